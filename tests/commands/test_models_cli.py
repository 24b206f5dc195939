"""`llama-desk models|download|token`: in-process runs of app.cli.main and a main.py subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail

from app import cli, paths
from app.hub import token_store
from app.units import format_size
from tests.hub.fixtures import TOKEN, fake_hub, files_containing, memory_keyring, tiny_gguf
from tests.hub.hub_server import FakeHub
from tests.hub.memory_keyring import MemoryKeyring

__all__ = ["fake_hub", "memory_keyring"]  # fixtures used by name below

ROOT = Path(__file__).resolve().parents[2]
R7 = "TheBloke/Llama-2-7B-Chat-GGUF"
Q4 = "llama-2-7b-chat.Q4_K_M.gguf"
GATED = "meta-llama/Llama-2-7b-chat-gguf"


@pytest.fixture(autouse=True)
def _setup(memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch) -> MemoryKeyring:
    monkeypatch.setenv("LLAMA_DESK_HUB_RETRY_DELAY", "0.01")
    return memory_keyring


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_models_lists_catalogue_offline(capsys: pytest.CaptureFixture[str],
                                        fake_hub: FakeHub) -> None:
    code, out, _ = run(capsys, "models")
    assert code == 0
    for repo in (R7, "TheBloke/Llama-2-13B-chat-GGUF", "TheBloke/Llama-2-70B-Chat-GGUF"):
        assert repo in out
    assert "llama-2-70b-chat.Q6_K.gguf  (2 parts, joined)" in out
    assert "4.08 GB~" in out and "Installed:" in out
    assert any(v in out for v in ("fits on GPU", "CPU only (slow)", "partial", "won't fit"))
    assert fake_hub.requests == []  # no network without --refresh


def test_models_refresh_caches_exact_sizes(capsys: pytest.CaptureFixture[str],
                                           fake_hub: FakeHub, tmp_path: Path) -> None:
    data = tiny_gguf(tmp_path / "m.gguf", payload_mib=1)
    fake_hub.add(R7, Q4, data)
    fake_hub.add(R7, "README.md", b"# hi")
    code, out, err = run(capsys, "models", "--refresh")
    assert code == 0
    assert "warning: TheBloke/Llama-2-13B-chat-GGUF" in err  # not in the emulator: reported
    exact_size = f" {format_size(len(data))}  "  # the Hub's size: no "~"
    assert exact_size in out
    assert (paths.cache_dir() / "hub-files.json").is_file()
    fake_hub.requests.clear()
    code, out, _ = run(capsys, "models")  # offline again, from the cache
    assert exact_size in out and fake_hub.requests == []
    code, out, _ = run(capsys, "models", "files", R7)
    assert Q4 in out and "README" not in out


def test_import_list_remove(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "mine.gguf"
    tiny_gguf(path, payload_mib=1)
    code, out, _ = run(capsys, "models", "import", str(path), "--name", "My tiny")
    assert code == 0 and "My tiny" in out and "stays where it is" in out
    code, out, _ = run(capsys, "models")
    assert "My tiny" in out and "imported" in out
    code, _, err = run(capsys, "models", "import", str(path))
    assert code == 1 and "already installed" in err
    code, out, _ = run(capsys, "models", "remove", "my tiny")
    assert code == 0 and "left in place" in out and path.exists()
    code, _, err = run(capsys, "models", "remove", "My tiny")
    assert code == 1 and "No installed model called 'My tiny'" in err
    text = tmp_path / "notes.gguf"
    text.write_text("hello")
    code, _, err = run(capsys, "models", "import", str(text))
    assert code == 1 and "Not a GGUF model file" in err and "Traceback" not in err


def test_starter_cannot_be_removed(capsys: pytest.CaptureFixture[str], starter_model: Path) -> None:
    from app.starter import STARTER_NAME

    code, _, err = run(capsys, "models", "remove", STARTER_NAME)
    assert code == 1 and "built in" in err


def test_download_by_quant_in_process(capsys: pytest.CaptureFixture[str], fake_hub: FakeHub,
                                      tmp_path: Path) -> None:
    data = tiny_gguf(tmp_path / "m.gguf", payload_mib=2)
    fake_hub.add(R7, Q4, data)
    fake_hub.drop_after.append(1_200_000)
    code, out, err = run(capsys, "download", R7, "--quant", "Q4_K_M")
    assert code == 0, err
    assert "Downloaded and verified" in out
    assert "Retrying" in err and "B/s  ETA " in err  # notices and plain progress lines (no tty)
    assert (paths.models_dir() / Q4).read_bytes() == data
    code, out, _ = run(capsys, "models")
    assert "[installed]" in out and "llama-2-7b-chat.Q4_K_M " in out


def test_download_errors_are_one_line(capsys: pytest.CaptureFixture[str],
                                      fake_hub: FakeHub) -> None:
    fake_hub.add(GATED, "model.gguf", b"GGUF")
    fake_hub.gated.add(GATED)
    code, _, err = run(capsys, "download", GATED, "model.gguf")
    assert code == 1 and "llama-desk: error:" in err and "token set" in err
    code, _, err = run(capsys, "download", "not a repo")
    assert code == 1 and "not a Hub repo id" in err
    code, _, err = run(capsys, "download", R7, "x.gguf", "--quant", "Q8_0")
    assert code == 1 and "either a FILE or --quant" in err


def test_download_subprocess(fake_hub: FakeHub, tmp_path: Path) -> None:
    data = tiny_gguf(tmp_path / "m.gguf", payload_mib=1)
    fake_hub.add(R7, Q4, data)
    home = tmp_path / "sub-home"
    env = {**os.environ, "LLAMA_DESK_HOME": str(home), "HF_ENDPOINT": fake_hub.hub_url,
           "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}
    argv = [sys.executable, "main.py", "download", R7, Q4]
    missing = [n for n in cli.COMMANDS if not (ROOT / "app" / "commands" / f"{n}.py").exists()]
    if missing:  # other command modules still being written: register only ours
        shim = ("import sys, app.cli as c; c.COMMANDS = ('models', 'download', 'token'); "
                "sys.exit(c.main(sys.argv[1:]))")
        argv = [sys.executable, "-c", shim, "download", R7, Q4]
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (home / "data" / "models" / Q4).read_bytes() == data


def test_token_set_status_clear(capsys: pytest.CaptureFixture[str], fake_hub: FakeHub,
                                memory_keyring: MemoryKeyring,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    fake_hub.users[TOKEN] = "alice"
    monkeypatch.setattr("getpass.getpass", lambda prompt="": f"  {TOKEN}\n")
    code, out, _ = run(capsys, "token", "set")
    assert code == 0 and "'alice'" in out and "OS keyring" in out
    assert memory_keyring.store[("llama-desk", "huggingface-token")] == TOKEN
    code, out, _ = run(capsys, "token", "status")
    assert code == 0 and "alice" in out and TOKEN not in out
    code, out, _ = run(capsys, "token", "status", "--check")
    assert code == 0 and "valid" in out
    code, out, _ = run(capsys, "token", "clear")
    assert code == 0 and "removed" in out and memory_keyring.store == {}
    code, out, _ = run(capsys, "token", "status")
    assert "No Hugging Face token" in out


def test_rejected_token_is_not_stored(capsys: pytest.CaptureFixture[str], fake_hub: FakeHub,
                                      memory_keyring: MemoryKeyring,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("getpass.getpass", lambda prompt="": TOKEN)
    code, _, err = run(capsys, "token", "set")
    assert code == 1 and "invalid or revoked" in err and TOKEN not in err
    assert memory_keyring.store == {}
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "")
    code, _, err = run(capsys, "token", "set")
    assert code == 1 and "empty" in err


def test_no_keyring_keeps_the_token_for_this_session(
    capsys: pytest.CaptureFixture[str], fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_hub.users[TOKEN] = "alice"
    keyring.set_keyring(fail.Keyring())
    assert not token_store.keyring_available()
    monkeypatch.setattr("getpass.getpass", lambda prompt="": TOKEN)
    code, out, _ = run(capsys, "token", "set")
    assert code == 0 and "this session only" in out and "No OS keyring" in out
    assert token_store.get_token() == TOKEN
    assert token_store.clear_token() and token_store.get_token() is None


def test_token_never_lands_in_any_file(capsys: pytest.CaptureFixture[str], fake_hub: FakeHub,
                                       tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Set the token, use it for a gated download and failures, then scan every file."""
    fake_hub.users[TOKEN] = "alice"
    fake_hub.add(GATED, "model.Q4_K_M.gguf", tiny_gguf(tmp_path / "g.gguf", payload_mib=1))
    fake_hub.gated.add(GATED)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": TOKEN)
    assert run(capsys, "-v", "token", "set")[0] == 0
    code, _, err = run(capsys, "-v", "download", GATED, "model.Q4_K_M.gguf")
    assert code == 1 and "not been granted access" in err and "a day or two" in err
    fake_hub.granted[TOKEN] = {GATED}
    fake_hub.drop_after.append(500_000)
    code, _, err = run(capsys, "-v", "download", GATED, "--quant", "Q4_K_M")
    assert code == 0, err
    assert run(capsys, "-v", "models", "--refresh")[0] == 0
    assert run(capsys, "-v", "token", "status", "--check")[0] == 0
    out, err = capsys.readouterr()
    assert TOKEN not in out + err
    hub_auth = {r.headers.get("Authorization") for r in fake_hub.requests if r.server == "hub"}
    assert f"Bearer {TOKEN}" in hub_auth
    assert all("Authorization" not in r.headers for r in fake_hub.requests if r.server == "cdn")
    assert all(TOKEN not in r.path for r in fake_hub.requests)
    assert TOKEN not in "".join(f"{k}={v}" for k, v in os.environ.items())
    assert (paths.logs_dir()).exists()
    assert files_containing(tmp_path, TOKEN) == []
