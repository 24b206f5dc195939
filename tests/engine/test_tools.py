"""Where llama.cpp's tools are found, the build cache key, and the pinned RPC-enabled llama-cpp-python."""

from __future__ import annotations

import os
import stat
import sys
import tarfile
from importlib.metadata import requires, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from app.engine import tools
from app.engine.rpc import rpc_available

ROOT = Path(__file__).resolve().parents[2]


def make_tool(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / tools.exe_name(name)
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(tools.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(tools.TOOLS_DIR_ENV, raising=False)
    monkeypatch.delenv("CMAKE_ARGS", raising=False)
    return tmp_path / "cache"


def test_installed_llama_cpp_python_is_the_pinned_rpc_build() -> None:
    assert version("llama-cpp-python") == tools.LLAMA_CPP_PYTHON_VERSION
    wanted = next(Requirement(r) for r in requires("llama-desk") or [] if r.startswith("llama-cpp-python"))
    assert tools.LLAMA_CPP_PYTHON_VERSION in wanted.specifier, "the pin is outside pyproject's range"
    assert rpc_available(), "llama_cpp was built without -DGGML_RPC=on"


def test_cache_key_follows_version_and_flags(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = tools.build_dir()
    assert plain.parent == cache and plain.name.startswith(tools.LLAMA_CPP_PYTHON_VERSION + "-")
    assert tools.cmake_args() == tools.BASE_CMAKE_ARGS
    monkeypatch.setenv("CMAKE_ARGS", "-DGGML_CUDA=on")
    assert tools.cmake_args() == (*tools.BASE_CMAKE_ARGS, "-DGGML_CUDA=on")
    assert tools.build_dir() != plain  # a CUDA build never reuses the CPU wheel
    monkeypatch.setenv("CMAKE_ARGS", "")
    assert tools.build_dir() == plain


def test_default_cache_is_outside_the_checkout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(tools.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert tools.cache_root() == tmp_path / "xdg" / "llama-desk-build"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert tools.cache_root() == Path.home() / ".cache" / "llama-desk-build"


def test_find_tool_order(cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert tools.find_tool(tools.RPC_SERVER) is None
    other = make_tool(cache / f"{tools.LLAMA_CPP_PYTHON_VERSION}-0123456789" / "bin", tools.RPC_SERVER)
    make_tool(cache / "0.0.1-0123456789" / "bin", tools.LLAMA_BENCH)  # another version: never used
    assert tools.find_tool(tools.RPC_SERVER) == other  # same version, other flags: protocol matches
    assert tools.find_tool(tools.LLAMA_BENCH) is None
    own = make_tool(tools.build_dir() / "bin", tools.RPC_SERVER)
    assert tools.find_tool(tools.RPC_SERVER) == own
    override = make_tool(tmp_path / "mine", tools.RPC_SERVER)
    monkeypatch.setenv(tools.TOOLS_DIR_ENV, str(tmp_path / "mine"))
    assert tools.find_tool(tools.RPC_SERVER) == override
    bundled = make_tool(tmp_path / "bundle" / "bin", tools.RPC_SERVER)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path / "bundle"), raising=False)
    assert tools.find_tool(tools.RPC_SERVER) == bundled
    assert tools.tool_env()["LD_LIBRARY_PATH"].split(os.pathsep)[0] == str(tmp_path / "bundle")


def test_a_file_without_execute_permission_is_not_a_tool(cache: Path) -> None:
    path = make_tool(tools.build_dir() / "bin", tools.RPC_SERVER)
    path.chmod(0o644)
    assert tools.find_tool(tools.RPC_SERVER) is None


def test_missing_tool_message_says_how_to_build(cache: Path) -> None:
    line = tools.missing_tool_message(tools.RPC_SERVER)
    assert "make tools" in line and str(cache) in line and tools.TOOLS_DIR_ENV in line
    assert "\n" not in line


def test_tools_module_is_standard_library_only() -> None:
    """packaging/build_llama_tools.py loads it by path, before any venv exists."""
    source = (ROOT / "app/engine/tools.py").read_text()
    imports = {line.split()[1] for line in source.splitlines() if line.startswith(("import ", "from "))}
    assert imports <= {"__future__", "hashlib", "os", "shlex", "sys", "pathlib"}


def test_build_script_reads_the_same_pin() -> None:
    sys.path.insert(0, str(ROOT / "packaging"))
    try:
        import build_llama_tools
    finally:
        sys.path.remove(str(ROOT / "packaging"))
    assert build_llama_tools.VERSION == tools.LLAMA_CPP_PYTHON_VERSION
    assert "-DLLAMA_USE_PREBUILT_UI=OFF" in build_llama_tools.TOOLS_CMAKE_ARGS  # no download in a build


def test_build_extracts_only_llama_cpp_and_refuses_escapes(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "packaging"))
    try:
        import build_llama_tools
    finally:
        sys.path.remove(str(ROOT / "packaging"))
    prefix = f"llama_cpp_python-{tools.LLAMA_CPP_PYTHON_VERSION}"
    (tmp_path / "a.txt").write_text("x")
    sdist = tmp_path / "s.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        tar.add(tmp_path / "a.txt", f"{prefix}/vendor/llama.cpp/CMakeLists.txt")
        tar.add(tmp_path / "a.txt", f"{prefix}/llama_cpp/llama.py")
    src = build_llama_tools.extract_llama_cpp(sdist, tmp_path / "out")
    assert (src / "CMakeLists.txt").read_text() == "x"
    assert not (tmp_path / "out" / prefix / "llama_cpp").exists()
    with tarfile.open(sdist, "w:gz") as tar:
        tar.add(tmp_path / "a.txt", f"{prefix}/vendor/llama.cpp/../../../../evil.txt")
    with pytest.raises((SystemExit, tarfile.TarError)):
        build_llama_tools.extract_llama_cpp(sdist, tmp_path / "out2")
    assert not (tmp_path / "evil.txt").exists()
