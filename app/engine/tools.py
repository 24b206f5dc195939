"""llama.cpp's own programs (rpc-server, llama-server, llama-bench) built from llama-cpp-python's sdist.

This module is the one place that pins the exact llama-cpp-python version and the CMake flags its
wheel and the tools are built with; ``packaging/build_llama_tools.py`` (what ``make tools`` runs)
loads it by file path, so it must stay standard-library only and import nothing from ``app``.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import sys
from pathlib import Path

# The exact llama-cpp-python release the wheel and the tools are built from: one llama.cpp source,
# so the RPC protocol of rpc-server and of the installed llama_cpp always match.
LLAMA_CPP_PYTHON_VERSION = "0.3.36"
# Flags every build gets; a user's own CMAKE_ARGS (e.g. -DGGML_CUDA=on) are added after them.
BASE_CMAKE_ARGS = ("-DGGML_RPC=on",)

RPC_SERVER = "ggml-rpc-server"  # llama.cpp's tools/rpc (called rpc-server before mid-2025)
LLAMA_SERVER = "llama-server"
LLAMA_BENCH = "llama-bench"
# What `make tools` builds; the last two are cheap once the libraries are built.
TOOLS = (RPC_SERVER, LLAMA_SERVER, LLAMA_BENCH, "llama-quantize", "llama-tokenize")

TOOLS_DIR_ENV = "LLAMA_DESK_TOOLS_DIR"  # a folder holding the tools: wins over the build cache
CACHE_ENV = "LLAMA_DESK_BUILD_CACHE"  # where builds are cached (default ~/.cache/llama-desk-build)
HOW_TO_BUILD = "build it with `make tools` in the Llama Desk source folder"


def cmake_args(extra: str | None = None) -> tuple[str, ...]:
    """The CMake flags of the wheel and tools: ours, then ``CMAKE_ARGS`` from the environment."""
    extra = os.environ.get("CMAKE_ARGS", "") if extra is None else extra
    return BASE_CMAKE_ARGS + tuple(shlex.split(extra))


def cache_root() -> Path:
    """The build cache, outside any checkout, so every clone and CI run can share it."""
    override = os.environ.get(CACHE_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(base).expanduser() / "llama-desk-build"


def build_key(args: tuple[str, ...] | None = None) -> str:
    """``<version>-<hash of the flags>``: another flag set (CUDA, Metal...) gets its own folder."""
    args = cmake_args() if args is None else args
    digest = hashlib.sha256("\0".join(args).encode()).hexdigest()[:10]
    return f"{LLAMA_CPP_PYTHON_VERSION}-{digest}"


def build_dir(args: tuple[str, ...] | None = None) -> Path:
    """The cache folder of one version + flag set: ``wheel/`` and ``bin/`` live in it."""
    return cache_root() / build_key(args)


def exe_name(tool: str) -> str:
    return tool + (".exe" if sys.platform == "win32" else "")


def bundled_tools_dir() -> Path | None:
    """``bin/`` inside a PyInstaller bundle, else None."""
    base = getattr(sys, "_MEIPASS", None)
    return Path(base) / "bin" if getattr(sys, "frozen", False) and base else None


def candidate_dirs() -> list[Path]:
    """Where tools are looked for, in order: the bundle, ``$LLAMA_DESK_TOOLS_DIR``, the build
    cache for the current flags, then any other finished build of the same version."""
    dirs: list[Path] = []
    bundled = bundled_tools_dir()
    if bundled is not None:
        dirs.append(bundled)
    override = os.environ.get(TOOLS_DIR_ENV, "").strip()
    if override:
        dirs.append(Path(override).expanduser())
    own = build_dir() / "bin"
    dirs.append(own)
    root = cache_root()
    if root.is_dir():
        others = [p / "bin" for p in root.glob(f"{LLAMA_CPP_PYTHON_VERSION}-*") if p / "bin" != own]
        dirs += sorted((p for p in others if p.is_dir()), key=lambda p: -p.stat().st_mtime)
    return dirs


def find_tool(tool: str) -> Path | None:
    """The first executable ``tool`` in :func:`candidate_dirs`, or None."""
    for folder in candidate_dirs():
        path = folder / exe_name(tool)
        if path.is_file() and os.access(path, os.X_OK):
            return path
    return None


def missing_tool_message(tool: str) -> str:
    """One line saying that ``tool`` is not built and how to get it."""
    return (
        f"llama.cpp's {tool} is not built yet: {HOW_TO_BUILD} (about 10 minutes once, then "
        f"cached in {cache_root()}), or set {TOOLS_DIR_ENV} to a folder that holds it."
    )


def tool_env() -> dict[str, str]:
    """Environment for running a tool: inside the bundle its shared libraries (libgomp...) are
    found in the bundle first."""
    env = dict(os.environ)
    base = getattr(sys, "_MEIPASS", None)
    if getattr(sys, "frozen", False) and base:
        env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (base, env.get("LD_LIBRARY_PATH", "")) if p)
    return env
