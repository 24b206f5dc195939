"""Build llama-cpp-python with RPC and llama.cpp's tools from one PyPI sdist, cached outside the checkout.

Usage (the Makefile runs these; any Python >= 3.11 with pip will do):

    python packaging/build_llama_tools.py wheel   # print the folder holding the RPC wheel (build once)
    python packaging/build_llama_tools.py install # install that wheel into the running Python (no deps)
    python packaging/build_llama_tools.py tools   # build rpc-server, llama-server, llama-bench... once
    python packaging/build_llama_tools.py check   # the running Python's llama_cpp has the RPC backend
    python packaging/build_llama_tools.py where   # print the cache folder for the current flags

Everything comes from ``llama_cpp_python-<version>.tar.gz`` on PyPI (``pip download``), the
version pinned in ``app/engine/tools.py``. pip's own wheel cache is keyed by the sdist, not by
``CMAKE_ARGS``, so it cannot tell an RPC build from a plain one: the wheel is built here with
``--no-cache-dir`` into ``<cache>/<version>-<flags hash>/wheel/``. Each result is built in a
temporary folder and renamed into place only when complete, under a file lock, so an interrupted
or concurrent build never looks done. A user's ``CMAKE_ARGS`` (e.g. ``-DGGML_CUDA=on``) apply to
both builds and get their own cache folder.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def load_pins() -> ModuleType:
    """app/engine/tools.py, loaded by path: no venv, no app package import needed."""
    spec = importlib.util.spec_from_file_location("llama_desk_tools", ROOT / "app/engine/tools.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PINS = load_pins()
VERSION: str = PINS.LLAMA_CPP_PYTHON_VERSION
SDIST = f"llama_cpp_python-{VERSION}.tar.gz"
# The tools are linked statically (one self-contained file each, shippable in the bundle) and
# built without anything that would download during the build (the server's web UI) or pull
# in more system libraries (OpenSSL).
TOOLS_CMAKE_ARGS = (
    "-DCMAKE_BUILD_TYPE=Release", "-DBUILD_SHARED_LIBS=OFF", "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_TOOLS=ON", "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_BUILD_APP=OFF", "-DLLAMA_BUILD_UI=OFF", "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_OPENSSL=OFF",
)


def say(message: str) -> None:
    print(f"build_llama_tools: {message}", file=sys.stderr, flush=True)


def jobs() -> int:
    return int(os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL") or os.cpu_count() or 2)


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold ``folder/.lock`` (another `make` in another clone waits instead of building twice)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as handle:
        if sys.platform != "win32":
            import fcntl

            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                say(f"another build holds {folder / '.lock'}; waiting for it")
                fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def sdist() -> Path:
    """The PyPI source distribution, downloaded once into the cache (pip checks its hash)."""
    folder = PINS.cache_root() / "sdist"
    path = folder / SDIST
    if path.is_file():
        return path
    with locked(folder):
        if not path.is_file():
            say(f"downloading {SDIST} from PyPI")
            with tempfile.TemporaryDirectory(dir=folder) as tmp:
                subprocess.run(
                    [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q",
                     "--no-deps", "--no-binary", ":all:", "-d", tmp, f"llama-cpp-python=={VERSION}"],
                    check=True, stdout=sys.stderr,
                )
                os.replace(Path(tmp) / SDIST, path)
    return path


def find_wheel(folder: Path) -> Path | None:
    wheels = sorted(folder.glob(f"llama_cpp_python-{VERSION}-*.whl"))
    return wheels[0] if wheels else None


def write_info(folder: Path, what: str, seconds: float, args: tuple[str, ...]) -> None:
    info_path = folder / "build-info.json"
    info = json.loads(info_path.read_text()) if info_path.is_file() else {}
    info[what] = {"seconds": round(seconds, 1), "cmake_args": list(args), "jobs": jobs(),
                  "built_at": time.strftime("%Y-%m-%d %H:%M:%S")}
    info_path.write_text(json.dumps(info, indent=2) + "\n")


def build_wheel() -> Path:
    """The folder that holds the RPC-enabled llama-cpp-python wheel (built on first use)."""
    args = PINS.cmake_args()
    folder = PINS.build_dir(args)
    target = folder / "wheel"
    if find_wheel(target):
        return target
    source = sdist()
    with locked(folder):
        if find_wheel(target):
            return target
        say(f"building llama-cpp-python {VERSION} wheel with {' '.join(args)} "
            f"({jobs()} jobs; about 6 minutes on 2 cores)")
        started = time.monotonic()
        env = dict(os.environ, CMAKE_ARGS=" ".join(args), CMAKE_BUILD_PARALLEL_LEVEL=str(jobs()))
        with tempfile.TemporaryDirectory(dir=folder, prefix=".wheel-") as tmp:
            subprocess.run(
                [sys.executable, "-m", "pip", "wheel", "--disable-pip-version-check", "--no-deps",
                 "--no-binary", "llama-cpp-python", "--no-cache-dir", "-w", tmp, str(source)],
                check=True, env=env, stdout=sys.stderr,
            )
            if find_wheel(Path(tmp)) is None:
                raise SystemExit(f"build_llama_tools: pip wheel made no wheel in {tmp}")
            shutil.rmtree(target, ignore_errors=True)
            os.replace(tmp, target)
            target.chmod(0o755)
        seconds = time.monotonic() - started
        write_info(folder, "wheel", seconds, args)
        say(f"wheel built in {seconds:.0f} s: {find_wheel(target)}")
    return target


def extract_llama_cpp(source: Path, into: Path) -> Path:
    """Unpack only ``vendor/llama.cpp`` of the sdist (safely: no links or paths outside)."""
    prefix = f"llama_cpp_python-{VERSION}/vendor/llama.cpp/"
    with tarfile.open(source) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(prefix)]
        try:
            tar.extractall(into, members=members, filter="data")
        except TypeError:  # Python < 3.11.4 has no extraction filters: refuse anything odd
            for m in members:
                if not (m.isfile() or m.isdir()) or ".." in Path(m.name).parts:
                    raise SystemExit(f"build_llama_tools: unexpected member {m.name} in {source}"
                                     ) from None
            tar.extractall(into, members=members)
    return into / prefix


def tools_ready(folder: Path) -> bool:
    return all((folder / PINS.exe_name(tool)).is_file() for tool in PINS.TOOLS)


def build_tools() -> Path:
    """The folder that holds rpc-server, llama-server, llama-bench... (built on first use)."""
    args = PINS.cmake_args()
    folder = PINS.build_dir(args)
    target = folder / "bin"
    if tools_ready(target):
        return target
    source = sdist()
    with locked(folder):
        if tools_ready(target):
            return target
        say(f"building {', '.join(PINS.TOOLS)} from llama.cpp in {SDIST} ({jobs()} jobs; "
            "about 10 minutes on 2 cores)")
        started = time.monotonic()
        with tempfile.TemporaryDirectory(dir=folder, prefix=".tools-") as tmp:
            src = extract_llama_cpp(source, Path(tmp) / "src")
            build = Path(tmp) / "build"
            configure = ["cmake", "-S", str(src), "-B", str(build), *TOOLS_CMAKE_ARGS, *args]
            subprocess.run(configure, check=True, stdout=subprocess.DEVNULL)
            subprocess.run(
                ["cmake", "--build", str(build), "--config", "Release", "-j", str(jobs()),
                 "--target", *PINS.TOOLS],
                check=True, stdout=sys.stderr,
            )
            staged = Path(tmp) / "bin"
            staged.mkdir()
            for tool in PINS.TOOLS:
                name = PINS.exe_name(tool)
                built = next((p for p in build.rglob(name) if p.is_file()), None)
                if built is None:
                    raise SystemExit(f"build_llama_tools: {name} was not built under {build}")
                shutil.copy2(built, staged / name)
            shutil.rmtree(target, ignore_errors=True)
            os.replace(staged, target)
        seconds = time.monotonic() - started
        write_info(folder, "tools", seconds, args)
        say(f"tools built in {seconds:.0f} s: {target}")
    return target


def install() -> int:
    """Install the cached RPC wheel (building it first if needed) into the running Python.

    ``--no-index`` with ``--no-deps``: only our wheel can be picked, never PyPI's sdist (which pip
    would satisfy from its wheel cache with a build that may lack RPC) nor a wheel PyPI may
    publish later; its dependencies come with ``pip install -e .`` afterwards, then ``check``.
    """
    folder = build_wheel()
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "-q", "--no-index",
         "--find-links", str(folder), "--no-deps", "--force-reinstall",
         f"llama-cpp-python=={VERSION}"],
        check=True, stdout=sys.stderr,
    )
    say(f"installed llama-cpp-python {VERSION} from {folder}")
    return 0


def check_rpc() -> int:
    """Exit 0 when the running interpreter's llama_cpp has ggml's RPC backend compiled in."""
    import ctypes

    import llama_cpp

    lib = llama_cpp.llama_cpp._lib  # libllama: its lookups reach libggml, as the app's do
    lib.ggml_backend_reg_by_name.restype = ctypes.c_void_p
    lib.ggml_backend_reg_by_name.argtypes = [ctypes.c_char_p]
    llama_cpp.llama_backend_init()
    found = lib.ggml_backend_reg_by_name(b"RPC")
    installed = getattr(llama_cpp, "__version__", "?")
    if not found:
        say(f"llama_cpp {installed} in {sys.prefix} has no RPC backend (built without "
            "-DGGML_RPC=on); remove the venv and run make again")
        return 1
    if installed != VERSION:
        say(f"llama_cpp {installed} is installed, but {VERSION} is pinned; remove the venv and "
            "run make again")
        return 1
    say(f"llama_cpp {installed} has the RPC backend")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("wheel", "install", "tools", "check", "where"))
    args = parser.parse_args(argv)
    if args.what == "install":
        return install()
    if args.what == "wheel":
        print(build_wheel())
    elif args.what == "tools":
        print(build_tools())
    elif args.what == "where":
        print(PINS.build_dir())
    else:
        return check_rpc()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
