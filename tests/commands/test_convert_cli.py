"""`llama-desk download` of official weights and `models import FOLDER`: stages, errors, Ctrl+C."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app import cli, paths
from app.hub import installed, token_store
from app.hub.convert_jobs import ConvertManager, ConvertState
from tests.convert.fixtures import (
    ckpt_root,
    hf_folder,
    meta_folder,
    serve_checkpoint,
    sp,
    tiny_model,
    tokenizer_model,
)
from tests.hub.fixtures import TOKEN, fake_hub, memory_keyring
from tests.hub.hub_server import FakeHub
from tests.hub.memory_keyring import MemoryKeyring

__all__ = ["ckpt_root", "fake_hub", "hf_folder", "memory_keyring", "meta_folder", "sp",
           "tiny_model", "tokenizer_model"]  # fixtures used by name

ROOT = Path(__file__).resolve().parents[2]
HF_REPO = "meta-llama/Llama-2-7b-chat-hf"


@pytest.fixture(autouse=True)
def _setup(memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch) -> MemoryKeyring:
    monkeypatch.setenv("LLAMA_DESK_HUB_RETRY_DELAY", "0.01")
    return memory_keyring


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def with_token(hub: FakeHub, repo: str) -> None:
    hub.users[TOKEN] = "alice"
    hub.granted.setdefault(TOKEN, set()).add(repo)
    token_store.set_token(TOKEN)


def registered() -> list[installed.InstalledModel]:
    return [m for m in installed.list_installed() if not m.builtin]


def test_download_official_repo_converts_with_stages_on_stderr(
        capsys: pytest.CaptureFixture[str], fake_hub: FakeHub, hf_folder: Path) -> None:
    serve_checkpoint(fake_hub, HF_REPO, hf_folder)
    with_token(fake_hub, HF_REPO)
    code, out, err = run(capsys, "download", HF_REPO, "--quant", "q8_0")
    assert code == 0, err
    assert "Installed 'Llama 2 7B Chat (official, Q8_0)'" in out
    assert "official, gated: request access first" in err and f"/{HF_REPO}" in err
    assert "Hugging Face token: set (alice)." in err
    for stage in ("[download]", "[convert]", "[quantize]", "[verify]"):
        assert stage in err
    assert "MB/s" in err and "ETA" in err
    assert TOKEN not in out + err
    code, out, _ = run(capsys, "models")
    assert "Llama 2 7B Chat (official, Q8_0)" in out and f"converted from {HF_REPO}" in out
    assert "Llama 2 7B Chat: official, gated" in out  # the catalogue's official entries
    code, out, _ = run(capsys, "models", "remove", "Llama 2 7B Chat (official, Q8_0)")
    assert code == 0 and "deleted" in out


def test_unknown_quant_lists_the_valid_ones_without_network(
        capsys: pytest.CaptureFixture[str], fake_hub: FakeHub) -> None:
    code, _, err = run(capsys, "download", HF_REPO, "--quant", "Q9_X")
    assert code == 1
    assert err.strip() == ("llama-desk: error: Unknown quantization 'Q9_X'; choose one of: F16, "
                           "Q8_0, Q6_K, Q5_K_M, Q5_K_S, Q5_0, Q4_K_M, Q4_K_S, Q4_0, Q3_K_M, Q2_K.")
    assert fake_hub.requests == []


def test_gated_without_token_is_one_line_and_nothing_registered(
        capsys: pytest.CaptureFixture[str], fake_hub: FakeHub, hf_folder: Path) -> None:
    serve_checkpoint(fake_hub, HF_REPO, hf_folder)
    code, _, err = run(capsys, "download", HF_REPO)
    assert code == 1
    [line] = [ln for ln in err.splitlines() if ln.startswith("llama-desk: error:")]
    assert "is gated" in line and "token set" in line and "Traceback" not in err
    assert registered() == []


def test_a_repo_outside_the_catalogue_is_recognised_from_its_listing(
        capsys: pytest.CaptureFixture[str], fake_hub: FakeHub, meta_folder: Path) -> None:
    serve_checkpoint(fake_hub, "someone/llama-2-13b-chat", meta_folder, gated=False)
    code, out, err = run(capsys, "download", "someone/llama-2-13b-chat", "--quant", "F16")
    assert code == 0, err
    assert "[md5 check]" in err and "[quantize]" not in err
    assert "Installed 'Llama 2 13B Chat (converted, F16)'" in out


def test_ctrl_c_leaves_nothing_registered_and_the_rerun_finishes(
        capsys: pytest.CaptureFixture[str], fake_hub: FakeHub, hf_folder: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    serve_checkpoint(fake_hub, HF_REPO, hf_folder)
    with_token(fake_hub, HF_REPO)
    real_wait = ConvertManager.wait

    def interrupted(self: ConvertManager, job_id: str, timeout: float | None = None) -> object:
        if timeout is None:  # the CLI's first wait: Ctrl+C once the download is under way
            while self.snapshot(job_id).state is not ConvertState.DOWNLOADING:
                real_wait(self, job_id, timeout=0.01)
            raise KeyboardInterrupt
        return real_wait(self, job_id, timeout)

    monkeypatch.setattr(ConvertManager, "wait", interrupted)
    code, _, err = run(capsys, "download", HF_REPO, "--quant", "Q8_0")
    assert code == 130
    assert "Stopped; nothing was installed. Run the same command again to resume" in err
    assert registered() == []
    assert not list(paths.models_dir().glob("*.gguf*"))
    monkeypatch.setattr(ConvertManager, "wait", real_wait)
    code, _out, err = run(capsys, "download", HF_REPO, "--quant", "Q8_0")
    assert code == 0, err
    assert [m.name for m in registered()] == ["Llama 2 7B Chat (official, Q8_0)"]


def test_models_import_folder_converts_into_the_models_folder(
        capsys: pytest.CaptureFixture[str], meta_folder: Path) -> None:
    code, out, err = run(capsys, "models", "import", str(meta_folder), "--quant", "Q8_0",
                         "--name", "Tiny official")
    assert code == 0, err
    assert "Installed 'Tiny official'" in out and "[md5 check]" in err
    [model] = registered()
    assert model.path.parent == paths.models_dir() and model.quantization == "Q8_0"
    code, _, err = run(capsys, "models", "import", str(meta_folder), "--quant", "Q8_0")
    assert code == 1 and "already installed as 'Tiny official'" in err


def test_models_import_bad_folder_and_quant_on_a_file_are_one_line(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "models", "import", str(tmp_path))
    assert code == 1 and "No Llama checkpoint in" in err and len(err.strip().splitlines()) == 1
    gguf = tmp_path / "x.gguf"
    gguf.write_bytes(b"GGUF")
    code, _, err = run(capsys, "models", "import", str(gguf), "--quant", "Q8_0")
    assert code == 1 and "--quant applies to checkpoint folders" in err
    code, _, err = run(capsys, "models", "import", str(tmp_path), "--quant", "Q7")
    assert code == 1 and "Unknown quantization 'Q7'" in err
    assert registered() == []


def test_models_import_folder_in_a_subprocess(hf_folder: Path, tmp_path: Path) -> None:
    """The real entry point: main.py, the quantizer's spawned child, exit status and output."""
    home = tmp_path / "sub-home"
    env = {**os.environ, "LLAMA_DESK_HOME": str(home),
           "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}
    proc = subprocess.run([sys.executable, "main.py", "models", "import", str(hf_folder),
                           "--quant", "Q4_K_M"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert "[quantize]" in proc.stderr and "Installed 'Llama-2-tiny-chat-hf (converted, Q4_K_M)'" \
        in proc.stdout
    assert list((home / "data" / "models").glob("*.gguf")) != []


def _md5_mismatch(folder: Path) -> None:
    shard = folder / "consolidated.01.pth"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 1
    shard.write_bytes(bytes(data))


def _missing_shard(folder: Path) -> None:
    (folder / "consolidated.01.pth").unlink()


def _params_disagree(folder: Path) -> None:
    import json

    (folder / "checklist.chk").unlink()
    params = json.loads((folder / "params.json").read_text())
    (folder / "params.json").write_text(json.dumps({**params, "n_heads": 8}))


def _hostile_pickle(folder: Path) -> None:
    import numpy as np

    from tests.convert.torchzip import RawTensor, write_pth

    (folder / "checklist.chk").unlink()
    write_pth(folder / "consolidated.00.pth", {"w": RawTensor.of("F32", np.ones(2, np.float32))},
              extra_global=("builtins", "exec"))


@pytest.mark.parametrize("spoil,expected", [
    (_md5_mismatch, "does not match checklist.chk"),
    (_missing_shard, "Missing shard consolidated.01.pth"),
    (_params_disagree, "do not belong together"),
    (_hostile_pickle, "asks for builtins.exec"),
])
def test_every_bad_folder_is_one_line_and_installs_nothing(
        spoil: object, expected: str, capsys: pytest.CaptureFixture[str], meta_folder: Path,
        tmp_path: Path) -> None:
    import shutil

    folder = Path(shutil.copytree(meta_folder.parent, tmp_path / "dl")) / meta_folder.name
    spoil(folder)  # type: ignore[operator]
    code, out, err = run(capsys, "models", "import", str(folder), "--quant", "Q8_0")
    assert code == 1 and out == ""
    [line] = [ln for ln in err.splitlines() if ln.startswith("llama-desk: error:")]
    assert expected in line and "Traceback" not in err
    assert registered() == [] and list(paths.models_dir().iterdir()) == []
