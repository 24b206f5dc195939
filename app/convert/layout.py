"""Which checkpoint layout a folder (or a Hub repo's file list) holds, and the files it needs."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from app.convert.errors import ConvertError
from app.convert.vocab import read_json

HF, META = "hf", "meta"
SHARD_RE = re.compile(r"-(\d{5})-of-(\d{5})\.(safetensors|bin)$")
META_SHARD_RE = re.compile(r"^consolidated\.(\d+)\.pth$")
HF_SMALL = ("config.json", "tokenizer.model", "tokenizer_config.json", "generation_config.json",
            "special_tokens_map.json", "model.safetensors.index.json",
            "pytorch_model.bin.index.json")
META_SMALL = ("params.json", "tokenizer.model", "checklist.chk", "tokenizer_checklist.chk")
LAYOUTS_HINT = ("config.json + *.safetensors (Hugging Face layout) or params.json + "
                "consolidated.00.pth (Meta's download.sh layout)")


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint found on disk, every file it needs present."""

    kind: str  # HF or META
    folder: Path
    config: Path  # config.json or params.json
    weights: tuple[Path, ...]  # in shard order
    tokenizer: Path
    tokenizer_config: Path | None
    checklists: tuple[Path, ...]  # Meta's md5 lists found beside the files

    @property
    def source_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.weights)


def _hf_weights(folder: Path) -> tuple[Path, ...]:
    for index_name, pattern in (("model.safetensors.index.json", "*.safetensors"),
                                ("pytorch_model.bin.index.json", "pytorch_model*.bin")):
        index = folder / index_name
        if index.is_file():
            weight_map = read_json(index, "shard index").get("weight_map")
            if not isinstance(weight_map, dict) or not weight_map:
                raise ConvertError(f"{index} has no weight_map; download it again.")
            names = sorted(set(map(str, weight_map.values())))
            for name in names:
                if not (folder / name).is_file():
                    raise ConvertError(f"Missing shard {name} in {folder} (listed in {index_name}); "
                                       "download it again.")
            return tuple(folder / n for n in names)
        found = sorted(folder.glob(pattern))
        if found:
            _check_numbered(folder, [p.name for p in found])
            return tuple(found)
    raise ConvertError(f"No weights in {folder}: expected *.safetensors or pytorch_model*.bin "
                       "beside config.json.")


def _check_numbered(folder: Path, names: list[str]) -> None:
    """Shards named name-0000k-of-0000n must all be there."""
    numbered = [m for n in names if (m := SHARD_RE.search(n))]
    if not numbered:
        return
    total = int(numbered[0].group(2))
    have = {int(m.group(1)) for m in numbered}
    missing = sorted(set(range(1, total + 1)) - have)
    if missing:
        stem = SHARD_RE.sub("", names[0])
        ext = numbered[0].group(3)
        raise ConvertError(f"Missing shard {stem}-{missing[0]:05d}-of-{total:05d}.{ext} in "
                           f"{folder}; download it again.")


def _meta_weights(folder: Path, checklist: Path | None) -> tuple[Path, ...]:
    shards = sorted((int(m.group(1)), p) for p in folder.glob("consolidated.*.pth")
                    if (m := META_SHARD_RE.match(p.name)))
    listed = set()
    if checklist is not None:
        listed = {n for n in read_checklist(checklist) if META_SHARD_RE.match(n)}
    for name in sorted(listed):
        if not (folder / name).is_file():
            raise ConvertError(f"Missing shard {name} in {folder} (listed in checklist.chk); "
                               "download it again.")
    for want, (number, _path) in enumerate(shards):
        if number != want:
            raise ConvertError(f"Missing shard consolidated.{want:02d}.pth in {folder}; "
                               "download it again.")
    return tuple(p for _n, p in shards)


def read_checklist(path: Path) -> dict[str, str]:
    """``md5  filename`` lines (md5sum's format, as Meta's checklist.chk) as {filename: md5}."""
    out: dict[str, str] = {}
    try:
        lines = path.read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise ConvertError(f"Cannot read {path}: {err}") from None
    for line in lines:
        parts = line.strip().split(maxsplit=1)
        if len(parts) == 2 and re.fullmatch(r"[0-9a-fA-F]{32}", parts[0]):
            out[parts[1].lstrip("*").strip()] = parts[0].lower()
    return out


def find_checkpoint(path: str | Path) -> Checkpoint:
    """The checkpoint in folder ``path``; ConvertError (one line) when it is not complete."""
    folder = Path(path).expanduser()
    if not folder.exists():
        raise ConvertError(f"Not found: {folder}")
    if folder.is_file():
        raise ConvertError(f"{folder} is a file; to convert a checkpoint, give its folder "
                           f"(holding {LAYOUTS_HINT}).")
    folder = folder.resolve()
    if (folder / "config.json").is_file():
        tokenizer = folder / "tokenizer.model"
        if not tokenizer.is_file():
            raise ConvertError(f"No tokenizer.model in {folder}: Llama Desk converts Llama models "
                               "with a SentencePiece tokenizer; download tokenizer.model too.")
        weights = _hf_weights(folder)
        tok_config = folder / "tokenizer_config.json"
        return Checkpoint(HF, folder, folder / "config.json", weights, tokenizer,
                          tok_config if tok_config.is_file() else None, ())
    if (folder / "params.json").is_file():
        checklist = folder / "checklist.chk"
        weights = _meta_weights(folder, checklist if checklist.is_file() else None)
        if not weights:
            raise ConvertError(f"No consolidated.00.pth in {folder} beside params.json; "
                               "download the weights too.")
        found = next((d / "tokenizer.model" for d in (folder, folder.parent)
                      if (d / "tokenizer.model").is_file()), None)
        if found is None:
            raise ConvertError(f"No tokenizer.model in {folder} or the folder above it: "
                               "download.sh puts it one level up; copy it next to params.json.")
        tokenizer = found
        lists = [checklist] if checklist.is_file() else []
        tok_list = tokenizer.parent / "tokenizer_checklist.chk"
        if tok_list.is_file():
            lists.append(tok_list)
        return Checkpoint(META, folder, folder / "params.json", weights, tokenizer, None,
                          tuple(lists))
    raise ConvertError(f"No Llama checkpoint in {folder}: expected {LAYOUTS_HINT}.")


@dataclass(frozen=True)
class RemoteLayout:
    """The files of a Hub repo that make up a convertible checkpoint."""

    kind: str
    small: tuple[str, ...]  # configs, tokenizer, checklists: fetched first
    weights: tuple[str, ...]


def remote_layout(names: Iterable[str]) -> RemoteLayout | None:
    """The files to download from a repo listing, or None when it holds no known layout.

    Only files at the repo's top level count. safetensors are preferred; pytorch_model*.bin is
    used only when a repo has no safetensors.
    """
    top = {n for n in names if "/" not in n}
    if "config.json" in top:
        weights = sorted(n for n in top if n.endswith(".safetensors"))
        if not weights:
            weights = sorted(n for n in top if n.startswith("pytorch_model") and n.endswith(".bin"))
        if not weights:
            return None
        if any(n.endswith(".safetensors") for n in weights):
            small = [n for n in HF_SMALL if n in top and n != "pytorch_model.bin.index.json"]
        else:
            small = [n for n in HF_SMALL if n in top and n != "model.safetensors.index.json"]
        return RemoteLayout(HF, tuple(small), tuple(weights))
    if "params.json" in top:
        weights = sorted(n for n in top if META_SHARD_RE.match(n))
        if not weights:
            return None
        return RemoteLayout(META, tuple(n for n in META_SMALL if n in top), tuple(weights))
    return None
