"""`llama-desk download --meta-url --model`: the whole route, bad links, a killed and resumed run."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app import cli
from app.hub import installed
from tests.convert.fixtures import ckpt_root, sp, tiny_model, tokenizer_model
from tests.hub.fixtures import files_containing
from tests.hub.meta_cdn import LICENCE_TEXT, MetaCDN, meta_cdn, meta_tree

__all__ = ["ckpt_root", "meta_cdn", "meta_tree", "sp", "tiny_model", "tokenizer_model"]

ROOT = Path(__file__).resolve().parents[2]
SHARD7 = "llama-2-7b-chat/consolidated.00.pth"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def error_line(err: str) -> str:
    [line] = [ln for ln in err.splitlines() if ln.startswith("llama-desk: error: ")]
    assert "Traceback" not in err
    return line.removeprefix("llama-desk: error: ")


def no_secrets(cdn: MetaCDN, *texts: str) -> None:
    for secret in cdn.secrets:
        assert not any(secret in text for text in texts)


def test_download_from_meta_converts_and_shows_the_licence_once(
        capsys: pytest.CaptureFixture[str], meta_cdn: MetaCDN) -> None:
    link = meta_cdn.new_link()
    code, out, err = run(capsys, "download", "--meta-url", link, "--model", "7B-chat",
                         "--quant", "q8_0")
    assert code == 0, err
    assert "Installed 'Llama 2 7B Chat (Meta, Q8_0)'" in out
    assert LICENCE_TEXT.strip() in out and "kept beside the model" in out
    assert "stays in your shell history" in err
    assert "Link: 127.0.0.1, valid until " in err and "(24 h left)" in err
    assert "Llama 2 7B Chat (llama-2-7b-chat): ~13.48 GB download in 1 file" in err
    for stage in ("[download]", "[convert]", "[quantize]", "[verify]"):
        assert stage in err
    no_secrets(meta_cdn, out, err)
    code, out, err = run(capsys, "download", "--meta-url", link, "--model", "llama-2-7b-chat",
                         "--quant", "F16")
    assert code == 0, err
    assert LICENCE_TEXT.strip() not in out and "kept beside the model" in out  # shown once
    code, out, _ = run(capsys, "models")
    assert "converted from Meta's download (llama-2-7b-chat)" in out


def test_the_link_can_be_pasted_on_stdin(capsys: pytest.CaptureFixture[str], meta_cdn: MetaCDN,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(meta_cdn.new_link() + "\n"))
    code, out, err = run(capsys, "download", "--meta-url", "--model", "llama-2-7b-chat",
                         "--quant", "F16")
    assert code == 0, err
    assert "shell history" not in err and "Installed 'Llama 2 7B Chat (Meta, F16)'" in out
    no_secrets(meta_cdn, out, err)


def test_a_link_without_star_is_one_line_and_no_request(
        capsys: pytest.CaptureFixture[str], meta_cdn: MetaCDN) -> None:
    link = meta_cdn.new_link(star="")
    code, out, err = run(capsys, "download", "--meta-url", link, "--model", "llama-2-7b-chat")
    assert code == 1 and out == ""
    assert error_line(err).startswith("The link to 127.0.0.1 has no `*` where each file's name goes")
    assert meta_cdn.requests == []
    no_secrets(meta_cdn, err)


def test_an_expired_link_is_one_line_before_any_request(
        capsys: pytest.CaptureFixture[str], meta_cdn: MetaCDN) -> None:
    code, _, err = run(capsys, "download", "--meta-url", meta_cdn.new_link(expires_in=-5),
                       "--model", "13B-chat")
    assert code == 1
    assert error_line(err).startswith("Meta's download links last 24 hours; request a new one "
                                      "at https://www.llama.com/llama-downloads/")
    assert meta_cdn.requests == [] and installed.list_installed()[1:] == []


def test_without_a_model_the_choices_come_with_sizes_and_verdicts(
        capsys: pytest.CaptureFixture[str], meta_cdn: MetaCDN) -> None:
    code, _, err = run(capsys, "download", "--meta-url", meta_cdn.new_link())
    assert code == 1 and error_line(err).startswith("Choose the model with --model")
    listed = [ln for ln in err.splitlines() if ln.startswith("  Llama 2 ")]
    assert len(listed) == 6
    assert "Llama 2 70B Chat (llama-2-70b-chat): ~137.97 GB download in 8 files" in err
    verdicts = ("fits on GPU", "partial", "CPU only", "won't fit")
    assert all(any(v in line for v in verdicts) for line in listed)
    assert meta_cdn.requests == []
    code, _, err = run(capsys, "download", "--model", "llama-3-8b")
    assert code == 1 and "Unknown Meta model 'llama-3-8b'; choose one of: llama-2-7b-chat" in err


def test_a_link_given_as_the_repo_is_refused_without_echoing_it(
        capsys: pytest.CaptureFixture[str], meta_cdn: MetaCDN) -> None:
    code, _, err = run(capsys, "download", meta_cdn.new_link())
    assert code == 1 and error_line(err).startswith("That is a link, not a Hub repo id")
    no_secrets(meta_cdn, err)


def test_killed_mid_shard_the_rerun_fetches_only_the_missing_bytes(
        meta_cdn: MetaCDN, tmp_path: Path) -> None:
    """The real entry point twice: SIGKILL while the shard streams, then the same command."""
    home = tmp_path / "sub-home"
    env = {**os.environ, "LLAMA_DESK_HOME": str(home), "LLAMA_DESK_HUB_RETRY_DELAY": "0.01",
           "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}
    argv = [sys.executable, "main.py", "download", "--meta-url", "--model", "llama-2-7b-chat",
            "--quant", "Q8_0"]
    link = meta_cdn.new_link()
    size = meta_cdn.file(SHARD7).size
    part = home / "data" / "models" / "sources" / "meta--llama-2-7b-chat" / (SHARD7 + ".part")
    meta_cdn.throttle = 1_000_000
    first = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert first.stdin is not None
    first.stdin.write(link + "\n")  # pasted as download.sh asks for it
    first.stdin.close()
    deadline = time.monotonic() + 90
    while not (part.is_file() and part.stat().st_size > size // 3):
        assert first.poll() is None and time.monotonic() < deadline, "no partial shard in time"
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    assert first.stdout is not None and first.stderr is not None
    out1, err1 = first.stdout.read(), first.stderr.read()
    first.stdout.close()
    first.stderr.close()
    have = part.stat().st_size
    assert 0 < have < size
    meta_cdn.throttle = 0.0
    second = subprocess.run(argv, cwd=ROOT, env=env, input=link + "\n", capture_output=True,
                            text=True, timeout=180)
    assert second.returncode == 0, second.stderr
    assert "Installed 'Llama 2 7B Chat (Meta, Q8_0)'" in second.stdout
    assert f"Resuming {SHARD7} at" in second.stderr
    assert meta_cdn.sent(SHARD7)[-1] == (f"bytes={have}-", size - have)  # only the missing bytes
    log = (home / "logs" / "llama-desk.log").read_text()
    assert "HTTP Request: GET" in log and "Signature=<redacted>" in log
    for secret in meta_cdn.secrets:
        assert files_containing(home, secret) == []
    no_secrets(meta_cdn, out1, err1, second.stdout, second.stderr)
