"""Finding a checkpoint in a folder or a Hub listing, and the complete-files checks."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.convert.errors import ConvertError
from app.convert.layout import HF, META, find_checkpoint, read_checklist, remote_layout


def test_hf_folder_is_found_with_its_shards_in_order(hf_folder: Path) -> None:
    ckpt = find_checkpoint(hf_folder)
    assert ckpt.kind == HF
    assert [p.name for p in ckpt.weights] == ["model-00001-of-00002.safetensors",
                                              "model-00002-of-00002.safetensors"]
    assert ckpt.tokenizer_config is not None and ckpt.checklists == ()


def test_download_sh_folder_finds_the_tokenizer_one_level_up(meta_folder: Path) -> None:
    ckpt = find_checkpoint(meta_folder)
    assert ckpt.kind == META
    assert [p.name for p in ckpt.weights] == ["consolidated.00.pth", "consolidated.01.pth"]
    assert ckpt.tokenizer == meta_folder.parent / "tokenizer.model"
    assert [c.name for c in ckpt.checklists] == ["checklist.chk", "tokenizer_checklist.chk"]
    assert set(read_checklist(ckpt.checklists[0])) == {"consolidated.00.pth", "consolidated.01.pth",
                                                       "params.json"}


def test_missing_shards_are_named(hf_folder: Path, meta_folder: Path, tmp_path: Path) -> None:
    hf = Path(shutil.copytree(hf_folder, tmp_path / "hf"))
    (hf / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(ConvertError, match=r"Missing shard model-00002-of-00002\.safetensors"):
        find_checkpoint(hf)
    (hf / "model.safetensors.index.json").unlink()
    with pytest.raises(ConvertError, match=r"Missing shard model-00002-of-00002\.safetensors"):
        find_checkpoint(hf)
    meta = Path(shutil.copytree(meta_folder.parent, tmp_path / "meta")) / meta_folder.name
    (meta / "consolidated.01.pth").unlink()
    with pytest.raises(ConvertError, match=r"Missing shard consolidated\.01\.pth .*checklist"):
        find_checkpoint(meta)
    (meta / "checklist.chk").unlink()
    (meta / "consolidated.00.pth").rename(meta / "consolidated.01.pth")
    with pytest.raises(ConvertError, match=r"Missing shard consolidated\.00\.pth"):
        find_checkpoint(meta)


def test_not_a_checkpoint_and_a_file_get_clear_lines(tmp_path: Path, hf_folder: Path) -> None:
    with pytest.raises(ConvertError, match=r"No Llama checkpoint in .*params\.json"):
        find_checkpoint(tmp_path)
    with pytest.raises(ConvertError, match="is a file; to convert a checkpoint, give its folder"):
        find_checkpoint(hf_folder / "config.json")
    with pytest.raises(ConvertError, match="Not found"):
        find_checkpoint(tmp_path / "nope")
    hf = Path(shutil.copytree(hf_folder, tmp_path / "hf"))
    (hf / "tokenizer.model").unlink()
    with pytest.raises(ConvertError, match=r"No tokenizer\.model"):
        find_checkpoint(hf)


def test_remote_layout_picks_exactly_the_needed_files() -> None:
    hf_repo = ["config.json", "generation_config.json", "LICENSE.txt", "README.md",
               "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
               "model.safetensors.index.json", "pytorch_model-00001-of-00002.bin",
               "pytorch_model-00002-of-00002.bin", "pytorch_model.bin.index.json",
               "special_tokens_map.json", "tokenizer.json", "tokenizer.model",
               "tokenizer_config.json", "USE_POLICY.md"]
    got = remote_layout(hf_repo)
    assert got is not None and got.kind == HF
    assert got.weights == ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")
    assert "pytorch_model.bin.index.json" not in got.small and "tokenizer.model" in got.small
    bins = remote_layout([n for n in hf_repo if "safetensors" not in n])
    assert bins is not None and bins.weights[0] == "pytorch_model-00001-of-00002.bin"
    assert "pytorch_model.bin.index.json" in bins.small
    meta = remote_layout(["checklist.chk", "consolidated.00.pth", "consolidated.01.pth",
                          "params.json", "tokenizer.model", "tokenizer_checklist.chk", "README.md"])
    assert meta is not None and meta.kind == META
    assert meta.weights == ("consolidated.00.pth", "consolidated.01.pth")
    assert set(meta.small) == {"params.json", "tokenizer.model", "checklist.chk",
                               "tokenizer_checklist.chk"}
    assert remote_layout(["llama-2-7b-chat.Q4_K_M.gguf", "README.md"]) is None
    assert remote_layout(["config.json", "README.md"]) is None
