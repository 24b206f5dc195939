"""Build the PyInstaller bundle (as `make bundle` does) and run its self-test, also with no Python."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.packaging.test_selftest import check_passed

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]
if not sys.platform.startswith("linux"):
    pytest.skip("the bundle is built and tested on Linux only", allow_module_level=True)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The built "Llama Desk" folder (built once for this module, in a temporary dist)."""
    out = tmp_path_factory.mktemp("bundle")
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(ROOT / "packaging" / "build.py"),
         "--distpath", str(out / "dist"), "--workpath", str(out / "build")],
        capture_output=True, text=True, timeout=1200, check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    print(f"\nbundle built in {time.monotonic() - started:.0f} s: {done.stdout.strip().splitlines()[-1]}")
    shutil.rmtree(out / "build", ignore_errors=True)  # PyInstaller's work files: not needed now
    yield out / "dist" / "Llama Desk"
    shutil.rmtree(out, ignore_errors=True)  # 350 MiB: not kept among pytest's old temp folders


def bare_env(home: Path) -> dict[str, str]:
    """No virtualenv, no PYTHONPATH, no Qt platform chosen: what a double-click gets, or less."""
    home.mkdir(parents=True, exist_ok=True)
    return {"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}


def test_bundle_layout(bundle: Path) -> None:
    internal = bundle / "_internal"
    assert os.access(bundle / "llama-desk", os.X_OK)
    assert (internal / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf").stat().st_size > 50_000_000
    libs = {p.name for p in (internal / "llama_cpp" / "lib").iterdir()}
    assert {"libllama.so", "libggml.so.0", "libggml-base.so.0", "libggml-cpu.so.0"} <= libs
    assert "libggml-rpc.so.0" in libs  # llama-cpp-python is built with RPC
    assert os.access(internal / "bin" / "ggml-rpc-server", os.X_OK)
    assert (internal / "PySide6" / "Qt" / "plugins" / "platforms" / "libqoffscreen.so").is_file()
    assert (internal / "PySide6" / "Qt" / "plugins" / "platforms" / "libqxcb.so").is_file()
    assert (internal / "resources" / "icons" / "llama-desk-256.png").is_file()
    assert (internal / "resources" / "llama-desk.desktop").is_file()
    assert (bundle / "install.sh").is_file() and (bundle / "uninstall.sh").is_file()
    assert not list(internal.rglob("QtQml.abi3.so")), "unused Qt modules were bundled"
    size = sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file() and not p.is_symlink())
    print(f"\nbundle size {size / 2**20:.0f} MiB")
    assert size < 500 * 2**20, "the bundle grew past 500 MiB: something unneeded is collected"


def test_bundle_self_test(bundle: Path, tmp_path: Path) -> None:
    started = time.monotonic()
    done = subprocess.run([str(bundle / "llama-desk"), "--self-test"], env=bare_env(tmp_path / "h"),
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    print(f"\nbundled self-test: {time.monotonic() - started:.1f} s")
    assert done.returncode == 0, done.stdout + done.stderr
    check_passed(done.stdout)
    assert f"{bundle}/_internal/models/SmolLM2-135M-Instruct.Q4_1.gguf" in done.stdout
    assert "MainWindow shown on the offscreen platform" in done.stdout


def test_bundle_cli_arguments(bundle: Path, tmp_path: Path) -> None:
    env = bare_env(tmp_path / "h")
    version = subprocess.run([str(bundle / "llama-desk"), "--version"], env=env, capture_output=True,
                             text=True, timeout=60, check=False)
    assert version.returncode == 0 and version.stdout.startswith("Llama Desk "), version.stderr
    usage = subprocess.run([str(bundle / "llama-desk"), "--help"], env=env, capture_output=True,
                           text=True, timeout=60, check=False)
    assert usage.returncode == 0, usage.stderr
    from app.cli import COMMANDS

    for command in COMMANDS:
        assert command in usage.stdout
    wrong = subprocess.run([str(bundle / "llama-desk"), "no-such-command"], env=env,
                           capture_output=True, text=True, timeout=60, check=False)
    assert wrong.returncode == 2 and "invalid choice" in wrong.stderr


def test_bundle_serves_the_api(bundle: Path, tmp_path: Path) -> None:
    import signal

    import httpx2

    proc = subprocess.Popen([str(bundle / "llama-desk"), "serve", "--port", "0", "--ctx", "512"],
                            env=bare_env(tmp_path / "h"), cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), proc.stderr.read() if proc.stderr else ""
        answer = httpx2.post(url + "/chat/completions", timeout=60, json={
            "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4, "seed": 1})
        assert answer.status_code == 200 and answer.json()["usage"]["completion_tokens"] >= 1
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err


def python_locations() -> list[Path]:
    """Every Python installation this machine has, to hide them from the bundle."""
    found = {Path(sys.prefix), Path(sys.base_prefix), ROOT}
    for pattern in ("/usr/lib/python3*", "/usr/local/lib/python3*", "/usr/bin/python3*",
                    "/usr/local/bin/python3*", "/usr/lib/*-linux-gnu/libpython3*",
                    "/usr/local/lib/libpython3*"):
        found.update(Path(p) for p in glob.glob(pattern))
    found = {p.resolve() for p in found if p.exists() and not p.is_symlink()}
    # Covering a folder covers what is inside it (and mounting there afterwards would fail).
    return sorted(p for p in found if not any(q in p.parents for q in found))


def test_bundle_runs_with_every_python_hidden(bundle: Path, tmp_path: Path) -> None:
    """In a private mount namespace every Python (and this source tree) is covered up first."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a mount namespace here: {probe.stderr.decode().strip()}")
    empty = tmp_path / "empty"
    empty.mkdir()
    hide = []
    for path in python_locations():
        cover = empty if path.is_dir() else "/dev/null"
        hide.append(f"mount --bind '{cover}' '{path}'")
    script = " && ".join([
        *hide,
        "! /usr/bin/env python3 -c pass 2>/dev/null",  # no Python is left to run
        "echo no-python-here",
        f"exec '{bundle}/llama-desk' --self-test",
    ])
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                          env=bare_env(tmp_path / "h"), cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("no-python-here\n")
    check_passed(done.stdout)


def test_installed_bundle_runs_from_the_menu_command(bundle: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = bare_env(home)
    done = subprocess.run(["bash", str(bundle / "install.sh")], env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    link = home / ".local" / "bin" / "llama-desk"
    ran = subprocess.run([str(link), "--self-test"], env=env, cwd=tmp_path, capture_output=True,
                         text=True, timeout=300, check=False)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    check_passed(ran.stdout)
    assert f"{home}/.local/opt/llama-desk/_internal/models/" in ran.stdout
    gone = subprocess.run(["bash", str(home / ".local" / "opt" / "llama-desk" / "uninstall.sh")],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert gone.returncode == 0, gone.stderr
    assert not (home / ".local" / "opt" / "llama-desk").exists()


def test_bundled_worker_serves_rpc(bundle: Path, tmp_path: Path) -> None:
    """`llama-desk worker` from the bundle runs the bundled rpc-server, with no Python around."""
    import signal

    from app.engine import rpc
    from tests.workers import free_port

    port = free_port()
    proc = subprocess.Popen([str(bundle / "llama-desk"), "worker", "--port", str(port)],
                            env=bare_env(tmp_path / "h"), cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert f"listening on 127.0.0.1:{port}" in first, first + proc.stderr.read()
        info = rpc.probe(f"127.0.0.1:{port}")  # this app's protocol version: the same llama.cpp
        assert info.version[:2] == rpc.PROTOCOL
        assert "client connected (1 so far)" in proc.stdout.readline()
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopped (1 client connection(s) served)" in out
