"""The Llama-2-chat GGUF catalogue: built-in known sizes, plus Hub metadata cached for offline use."""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app import fileio, paths
from app.hub.client import RepoListing

if TYPE_CHECKING:
    from app.engine.hardware import Hardware
    from app.engine.planner import Plan

log = logging.getLogger(__name__)

QUANTS = ("Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_0", "Q4_K_S", "Q4_K_M", "Q5_0", "Q5_K_S",
          "Q5_K_M", "Q6_K", "Q8_0")
DEFAULT_QUANT = "Q4_K_M"
# Sizes in GB as published on TheBloke's model cards (rounded; the Hub's exact sizes and
# sha256 replace them once `llama-desk models --refresh` or a download has fetched them).
_SIZES_GB = {
    "7B": (2.83, 2.95, 3.30, 3.60, 3.83, 3.86, 4.08, 4.65, 4.65, 4.78, 5.53, 7.16),
    "13B": (5.43, 5.66, 6.34, 6.93, 7.37, 7.41, 7.87, 8.97, 8.97, 9.23, 10.68, 13.83),
    "70B": (29.28, 29.92, 33.19, 36.15, 38.87, 39.07, 41.42, 47.46, 47.46, 48.75, 56.59, 73.29),
}
_REPOS = {
    "7B": ("TheBloke/Llama-2-7B-Chat-GGUF", "llama-2-7b-chat"),
    "13B": ("TheBloke/Llama-2-13B-chat-GGUF", "llama-2-13b-chat"),
    "70B": ("TheBloke/Llama-2-70B-Chat-GGUF", "llama-2-70b-chat"),
}
_SPLIT = {("70B", "Q6_K"), ("70B", "Q8_0")}  # published as <file>-split-a, <file>-split-b
SPLIT_RE = re.compile(r"^(?P<base>.+\.gguf)-split-(?P<part>[a-z])$")
QUANT_RE = re.compile(
    r"(?<![A-Za-z0-9])(I?Q\d(?:_[A-Z0-9]+)*|BF16|F16|F32)(?=[.\-_]|$)", re.IGNORECASE
)
_cache_lock = threading.Lock()
# catalogue() built from hub-files.json, keyed by the file's path, mtime and size: find() runs
# for every download and lookup, and re-parsing the JSON each time is wasted work.
_memo: tuple[tuple[str, int, int], tuple[CatalogueModel, ...]] | None = None


@dataclass(frozen=True)
class CatalogueFile:
    """A downloadable model file: one .gguf, or one joined from published parts."""

    repo_id: str
    filename: str
    quantization: str
    size_bytes: int | None
    sha256: str | None = None
    parts: tuple[str, ...] = ()
    exact: bool = False  # size from the Hub (True) or the built-in rounded figure (False)
    size_class: str | None = None  # "7B", "13B", "70B" when known, for the planner


@dataclass(frozen=True)
class CatalogueModel:
    """A repo and its files."""

    repo_id: str
    title: str
    size_class: str | None
    files: tuple[CatalogueFile, ...]
    builtin: bool = True

    def file(self, quant: str) -> CatalogueFile | None:
        return next((f for f in self.files if f.quantization.upper() == quant.upper()), None)


def quant_of(filename: str) -> str:
    """The quantization named in a file name ("llama-2-7b-chat.Q4_K_M.gguf" -> "Q4_K_M")."""
    stem = SPLIT_RE.sub(r"\g<base>", filename).removesuffix(".gguf")
    found = QUANT_RE.findall(stem)
    return found[-1].upper() if found else "?"


def size_class_of(repo_id: str) -> str | None:
    match = re.search(r"(?<![0-9])(7|13|70)[bB](?![a-z])", repo_id)
    return f"{match.group(1)}B" if match else None


def builtin_models() -> list[CatalogueModel]:
    """The shipped list: works offline, sizes rounded, no sha256."""
    models = []
    for size, (repo, stem) in _REPOS.items():
        files = []
        for quant, gb in zip(QUANTS, _SIZES_GB[size], strict=True):
            name = f"{stem}.{quant}.gguf"
            parts = (f"{name}-split-a", f"{name}-split-b") if (size, quant) in _SPLIT else ()
            files.append(CatalogueFile(repo, name, quant, int(gb * 1e9), None, parts, False, size))
        models.append(CatalogueModel(repo, f"Llama-2 {size} chat", size, tuple(files)))
    return models


def cache_path() -> Path:
    return paths.cache_dir() / "hub-files.json"


def load_cache() -> dict[str, Any]:
    try:
        data = json.loads(cache_path().read_text("utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def store_listing(listing: RepoListing) -> None:
    """Remember a repo's file sizes and sha256 for offline use."""
    with _cache_lock:
        data = load_cache()
        data[listing.repo_id] = {
            "commit": listing.commit, "gated": listing.gated, "fetched": time.time(),
            "files": {f.filename: {"size": f.size, "sha256": f.sha256} for f in listing.files},
        }
        fileio.write_text(cache_path(), json.dumps(data, indent=1, sort_keys=True))
        _forget_catalogue()


def files_from_listing(repo_id: str, files: dict[str, dict[str, Any]]) -> list[CatalogueFile]:
    """The .gguf choices in a listing, with `-split-x` parts grouped under their joined name."""
    size_class = size_class_of(repo_id)
    singles: dict[str, CatalogueFile] = {}
    groups: dict[str, list[str]] = {}
    for name, meta in sorted(files.items()):
        match = SPLIT_RE.match(name)
        if match:
            groups.setdefault(match.group("base"), []).append(name)
        elif name.lower().endswith(".gguf"):
            singles[name] = CatalogueFile(repo_id, name, quant_of(name), meta.get("size"),
                                          meta.get("sha256"), (), True, size_class)
    for base, parts in groups.items():
        sizes = [files[p].get("size") for p in parts]
        total = sum(int(s) for s in sizes if s) if all(sizes) else None
        singles[base] = CatalogueFile(repo_id, base, quant_of(base), total, None,
                                      tuple(sorted(parts)), True, size_class)
    return sorted(singles.values(), key=lambda f: (f.size_bytes or 0, f.filename))


def _forget_catalogue() -> None:
    global _memo
    _memo = None


def _cache_key() -> tuple[str, int, int]:
    path = cache_path()
    try:
        stat = path.stat()
    except OSError:
        return (str(path), -1, -1)
    return (str(path), stat.st_mtime_ns, stat.st_size)


def catalogue() -> list[CatalogueModel]:
    """Built-in models overlaid with cached Hub metadata, then repos the user looked up.

    Built once per version of hub-files.json (its path, mtime and size), not on every call.
    """
    global _memo
    key = _cache_key()  # taken before reading, so a concurrent write only causes a rebuild
    memo = _memo
    if memo is not None and memo[0] == key:
        return list(memo[1])
    models = _build_catalogue(load_cache())
    _memo = (key, tuple(models))
    return models


def _build_catalogue(cache: dict[str, Any]) -> list[CatalogueModel]:
    result = []
    for model in builtin_models():
        cached = cache.get(model.repo_id)
        if cached:
            exact = {f.filename: f for f in files_from_listing(model.repo_id, cached["files"])}
            files = tuple(
                replace(f, size_bytes=exact[f.filename].size_bytes, sha256=exact[f.filename].sha256,
                        parts=exact[f.filename].parts or f.parts, exact=True)
                if f.filename in exact and exact[f.filename].size_bytes else f
                for f in model.files
            )
            model = replace(model, files=files)
        result.append(model)
    known = {m.repo_id for m in result}
    for repo_id, cached in sorted(cache.items()):
        if repo_id not in known and isinstance(cached, dict):
            files = tuple(files_from_listing(repo_id, cached.get("files", {})))
            if files:
                result.append(CatalogueModel(repo_id, repo_id, size_class_of(repo_id), files, False))
    return result


def find(repo_id: str, filename: str | None = None, quant: str | None = None) -> CatalogueFile | None:
    """A catalogue (or cached) file by repo and file name or quantization."""
    for model in catalogue():
        if model.repo_id.lower() != repo_id.lower():
            continue
        for f in model.files:
            if filename and f.filename == filename:
                return f
            if not filename and quant and f.quantization.upper() == quant.upper():
                return f
    return None


def refresh(repo_id: str, token: str | None) -> list[CatalogueFile]:
    """Fetch a repo's file list from the Hub (network), cache it, return its .gguf choices."""
    from app.hub import client

    listing = client.repo_listing(repo_id, token=token)
    store_listing(listing)
    files = {f.filename: {"size": f.size, "sha256": f.sha256} for f in listing.files}
    return files_from_listing(repo_id, files)


def plan_for(file: CatalogueFile, n_ctx: int, hardware: Hardware) -> Plan | None:
    """The fit plan for a file before download, for every face (window, CLI).

    The known Llama-2 shape of the file's size class, with the file's size (or, when the size is
    not known, an estimate from its quantization). None when the size class, or both the size
    and the quantization, are unknown.
    """
    from app.engine.planner import ModelShape, plan

    if not file.size_class:
        return None
    try:
        shape = ModelShape.known(file.size_class, file.size_bytes or None, file.quantization)
    except ValueError:
        return None
    return plan(shape, n_ctx, hardware)


def verdicts(files: list[CatalogueFile], n_ctx: int, hardware: Hardware) -> dict[str, str]:
    """Short fit verdicts by file name, for the files that have one (see plan_for)."""
    plans = {f.filename: plan_for(f, n_ctx, hardware) for f in files}
    return {name: p.short for name, p in plans.items() if p is not None}


# ---- official Meta weights (converted to GGUF here) ---------------------------------------------
# From tests/benchmarks/test_convert_bench.py on the 2-core build machine (rounded down: that
# machine was shared): the converter writes ~CONVERT_MBPS of F16 GGUF per second from float16
# safetensors; llama.cpp's quantizer reads ~QUANTIZE_MBPS_PER_CORE of F16 per second and core
# (K-quants search each block's scales, the older types do not). Only for the time shown.
CONVERT_MBPS = 250.0
QUANTIZE_MBPS_PER_CORE = {"K": 7.0, "other": 35.0}


@dataclass(frozen=True)
class OfficialModel:
    """A gated meta-llama repo in the transformers layout, turned into GGUF after download."""

    repo_id: str
    title: str
    size_class: str
    source_bytes: int  # the safetensors shards, as published (float16, so ~ the F16 GGUF)

    @property
    def page(self) -> str:
        from app.hub.client import repo_page

        return repo_page(self.repo_id)

    def result_bytes(self, quant: str) -> int:
        from app.convert.quantize import expected_size

        return expected_size(self.source_bytes, quant)

    def disk_bytes(self, quant: str) -> int:
        """Peak disk use: the download, the F16 intermediate and the result side by side."""
        f16 = self.source_bytes
        return self.source_bytes + (f16 if quant != "F16" else 0) + self.result_bytes(quant)

    def convert_seconds(self, quant: str, cores: int | None = None) -> float:
        """Rough conversion + quantization time on this machine (not the download)."""
        cores = max(1, cores or os.cpu_count() or 1)
        seconds = self.source_bytes / (CONVERT_MBPS * 1e6)
        if quant != "F16":
            rate = QUANTIZE_MBPS_PER_CORE["K" if "_K" in quant else "other"]
            seconds += self.source_bytes / (rate * 1e6 * cores)
        return seconds


OFFICIAL_MODELS = (
    OfficialModel("meta-llama/Llama-2-7b-chat-hf", "Llama 2 7B Chat", "7B", 13_476_839_424),
    OfficialModel("meta-llama/Llama-2-13b-chat-hf", "Llama 2 13B Chat", "13B", 26_031_728_640),
    OfficialModel("meta-llama/Llama-2-70b-chat-hf", "Llama 2 70B Chat", "70B", 137_953_316_864),
)
OFFICIAL_NOTE = "official, gated: request access first"


def official_models() -> list[OfficialModel]:
    return list(OFFICIAL_MODELS)


def official(repo_id: str) -> OfficialModel | None:
    return next((m for m in OFFICIAL_MODELS if m.repo_id.lower() == repo_id.lower()), None)
