"""packaging/linux/install.sh and uninstall.sh, on a stand-in bundle in a temporary home."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.packaging.test_assets import PNG_SIZES, read_desktop

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / "packaging" / "linux" / "install.sh"
UNINSTALL = ROOT / "packaging" / "linux" / "uninstall.sh"

def fake_bundle(where: Path) -> Path:
    """A folder shaped like dist/"Llama Desk": an executable, _internal/resources, the scripts."""
    bundle = where / "Llama Desk"
    shutil.copytree(ROOT / "resources", bundle / "_internal" / "resources")
    exe = bundle / "llama-desk"
    exe.write_text('#!/bin/sh\necho "stand-in llama-desk $*"\n')
    exe.chmod(0o755)
    for script in (INSTALL, UNINSTALL):
        shutil.copy2(script, bundle / script.name)
    return bundle


def run(script: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(script), *args], env=env, capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.fixture
def home_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home dir"  # a space, as some people's homes have
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / "xdg data"))
    env.pop("PREFIX", None)
    env.pop("BIN_DIR", None)
    return env


def test_install_then_uninstall(tmp_path: Path, home_env: dict[str, str]) -> None:
    bundle = fake_bundle(tmp_path / "dist")
    home, data = Path(home_env["HOME"]), Path(home_env["XDG_DATA_HOME"])
    # User data that uninstall must keep.
    (data / "llama-desk").mkdir(parents=True)
    (data / "llama-desk" / "conversations.sqlite3").write_text("precious")

    done = run(bundle / "install.sh", home_env)  # run from inside the bundle: installs that bundle
    assert done.returncode == 0, done.stderr

    prefix = home / ".local" / "opt" / "llama-desk"
    assert (prefix / "llama-desk").stat().st_mode & 0o111
    assert (prefix / "_internal" / "resources" / "icons" / "llama-desk.svg").is_file()
    for size in PNG_SIZES:
        assert (data / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "llama-desk.png").is_file()
    assert (data / "icons" / "hicolor" / "scalable" / "apps" / "llama-desk.svg").is_file()
    desktop = data / "applications" / "llama-desk.desktop"
    entry = read_desktop(desktop)
    assert entry["Exec"] == f'"{prefix}/llama-desk"'
    assert entry["TryExec"] == f"{prefix}/llama-desk"
    assert entry["Icon"] == "llama-desk"
    if shutil.which("desktop-file-validate"):
        check = subprocess.run(["desktop-file-validate", str(desktop)], capture_output=True, text=True)
        assert check.returncode == 0 and not check.stdout.strip(), check.stdout
    link = home / ".local" / "bin" / "llama-desk"
    assert link.is_symlink()
    ran = subprocess.run([str(link), "--version"], capture_output=True, text=True, check=True)
    assert ran.stdout.strip() == "stand-in llama-desk --version"

    # Installing again replaces the program in place.
    again = run(INSTALL, home_env, str(bundle))
    assert again.returncode == 0, again.stderr

    gone = run(prefix / "uninstall.sh", home_env)  # the installed copy removes itself
    assert gone.returncode == 0, gone.stderr
    assert not prefix.exists()
    assert not link.exists() and not link.is_symlink()
    assert not desktop.exists()
    assert not list((data / "icons").rglob("llama-desk.*"))
    assert (data / "llama-desk" / "conversations.sqlite3").read_text() == "precious"
    assert str(data / "llama-desk") in gone.stdout  # says where the kept data lives


def test_install_respects_prefix_and_bin_dir(tmp_path: Path, home_env: dict[str, str]) -> None:
    bundle = fake_bundle(tmp_path / "dist")
    env = dict(home_env, PREFIX=str(tmp_path / "apps" / "ld"), BIN_DIR="")
    done = run(INSTALL, env, str(bundle))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "apps" / "ld" / "llama-desk").is_file()
    assert not (Path(env["HOME"]) / ".local" / "bin").exists()
    assert run(UNINSTALL, env).returncode == 0
    assert not (tmp_path / "apps" / "ld").exists()


def test_install_refuses_a_foreign_prefix(tmp_path: Path, home_env: dict[str, str]) -> None:
    bundle = fake_bundle(tmp_path / "dist")
    foreign = tmp_path / "someone-elses"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    env = dict(home_env, PREFIX=str(foreign))
    done = run(INSTALL, env, str(bundle))
    assert done.returncode != 0
    assert "was not made by this script" in done.stderr
    assert (foreign / "notes.txt").read_text() == "keep me"
    gone = run(UNINSTALL, env)
    assert gone.returncode != 0 and "not removing it" in gone.stderr
    assert (foreign / "notes.txt").is_file()


def test_install_explains_a_missing_bundle(tmp_path: Path, home_env: dict[str, str]) -> None:
    done = run(INSTALL, home_env, str(tmp_path / "nowhere"))
    assert done.returncode != 0
    assert "no Llama Desk bundle" in done.stderr and "make bundle" in done.stderr
    assert not (Path(home_env["HOME"]) / ".local").exists()
