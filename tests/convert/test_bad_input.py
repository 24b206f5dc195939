"""Every bad checkpoint gets one readable line, and nothing is left in the output folder."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from app.convert.errors import ConvertCancelled, ConvertError
from app.convert.layout import find_checkpoint
from app.convert.pipeline import convert
from app.convert.progress import Progress, Reporter
from tests.convert.torchzip import RawTensor, write_pth


def copy_meta(meta_folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(meta_folder.parent, tmp_path / "src")) / meta_folder.name


def copy_hf(hf_folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(hf_folder, tmp_path / "src"))


def fails(folder: Path, tmp_path: Path, quant: str = "F16") -> str:
    out_dir = tmp_path / "out"
    out_dir.mkdir(exist_ok=True)
    with pytest.raises(ConvertError) as err:
        convert(find_checkpoint(folder), out_dir / "model.gguf", quant, name="x", reporter=Reporter())
    assert list(out_dir.iterdir()) == []
    text = str(err.value)
    assert "\n" not in text and "Traceback" not in text
    return text


def edit_json(path: Path, **changes: Any) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def test_shard_whose_md5_differs_from_checklist(meta_folder: Path, tmp_path: Path) -> None:
    folder = copy_meta(meta_folder, tmp_path)
    shard = folder / "consolidated.01.pth"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside tensor bytes: still a readable zip
    shard.write_bytes(bytes(data))
    assert "consolidated.01.pth does not match checklist.chk" in fails(folder, tmp_path)


def test_tokenizer_checklist_one_level_up_is_checked(meta_folder: Path, tmp_path: Path) -> None:
    folder = copy_meta(meta_folder, tmp_path)
    (folder.parent / "tokenizer_checklist.chk").write_text("0" * 32 + "  tokenizer.model\n")
    assert "tokenizer.model does not match tokenizer_checklist.chk" in fails(folder, tmp_path)


def test_missing_meta_shard_without_a_checklist(meta_folder: Path, tmp_path: Path) -> None:
    folder = copy_meta(meta_folder, tmp_path)
    (folder / "checklist.chk").unlink()
    (folder / "consolidated.01.pth").unlink()
    assert "shard is missing" in fails(folder, tmp_path)


def test_shapes_that_disagree_with_params_json(meta_folder: Path, tmp_path: Path) -> None:
    folder = copy_meta(meta_folder, tmp_path)
    (folder / "checklist.chk").unlink()
    edit_json(folder / "params.json", n_layers=3)
    assert "has no tensor for blk.2" in fails(folder, tmp_path)
    edit_json(folder / "params.json", n_layers=2, dim=512, multiple_of=None)
    assert "do not belong together" in fails(folder, tmp_path)


def test_shapes_that_disagree_with_config_json(hf_folder: Path, tmp_path: Path) -> None:
    folder = copy_hf(hf_folder, tmp_path)
    edit_json(folder / "config.json", intermediate_size=1024)
    assert "intermediate_size 1024 but the weights have 768" in fails(folder, tmp_path)
    edit_json(folder / "config.json", intermediate_size=768, num_key_value_heads=4)
    assert "do not belong together" in fails(folder, tmp_path)


def test_a_non_llama_architecture(hf_folder: Path, tmp_path: Path) -> None:
    folder = copy_hf(hf_folder, tmp_path)
    edit_json(folder / "config.json", architectures=["GPT2LMHeadModel"], model_type="gpt2")
    assert "GPT2LMHeadModel model, not Llama" in fails(folder, tmp_path)


def test_a_pickle_that_asks_for_another_global(meta_folder: Path, tmp_path: Path) -> None:
    folder = copy_meta(meta_folder, tmp_path)
    (folder / "checklist.chk").unlink()
    write_pth(folder / "consolidated.00.pth", {"w": RawTensor.of("F32", np.ones(2, np.float32))},
              extra_global=("os", "system"))
    assert "asks for os.system" in fails(folder, tmp_path)


def test_a_truncated_safetensors_file(hf_folder: Path, tmp_path: Path) -> None:
    folder = copy_hf(hf_folder, tmp_path)
    shard = folder / "model-00002-of-00002.safetensors"
    shard.write_bytes(shard.read_bytes()[:-4096])
    assert "truncated" in fails(folder, tmp_path)


def test_not_enough_disk_names_the_numbers(hf_folder: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from app.convert import pipeline

    monkeypatch.setattr(pipeline.shutil, "disk_usage",
                        lambda _p: SimpleNamespace(total=10**12, used=10**12 - 10**6, free=10**6))
    text = fails(hf_folder, tmp_path, "Q4_K_M")
    assert "Not enough disk space to convert" in text
    assert "for the F16 intermediate +" in text and "for the Q4_K_M result" in text
    assert "only 1.0 MB free" in text


@pytest.mark.parametrize("stage", ["check", "convert", "quantize"])
def test_cancel_in_any_stage_leaves_nothing(stage: str, meta_folder: Path, tmp_path: Path) -> None:
    cancel = threading.Event()
    seen: list[str] = []

    def progress(p: Progress) -> None:
        seen.append(p.stage)
        if p.stage == stage:
            cancel.set()

    out_dir = tmp_path / "out"
    with pytest.raises(ConvertCancelled):
        convert(find_checkpoint(meta_folder), out_dir / "m.gguf", "Q8_0", name="x",
                reporter=Reporter(progress, cancel))
    assert stage in seen
    assert list(out_dir.iterdir()) == []


def test_the_users_folder_is_never_modified(meta_folder: Path, tmp_path: Path) -> None:
    before = {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in meta_folder.parent.rglob("*")}
    convert(find_checkpoint(meta_folder), tmp_path / "m.gguf", "Q8_0", name="x", reporter=Reporter())
    after = {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in meta_folder.parent.rglob("*")}
    assert before == after
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.gguf"]
