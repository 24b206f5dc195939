"""Each Hub failure becomes its own UserError with the next step, and never shows the token."""

from __future__ import annotations

from pathlib import Path

import httpx2
import pytest

from app.hub import client
from app.hub.download import Control
from app.hub.errors import (
    AccessNotGrantedError,
    HubError,
    HubUnreachableError,
    NotFoundError,
    ServerError,
    TokenRejectedError,
    TokenRequiredError,
)
from app.hub.fetch import fetch_job
from tests.hub.fixtures import FAST_RETRY, TOKEN
from tests.hub.hub_server import FakeHub

GATED = "meta-llama/Llama-2-7b-chat-hf"


@pytest.fixture
def gated_hub(fake_hub: FakeHub) -> FakeHub:
    fake_hub.add(GATED, "model.gguf", b"GGUF" + b"\0" * 100)
    fake_hub.gated.add(GATED)
    fake_hub.users[TOKEN] = "alice"
    return fake_hub


def head(repo: str, name: str, token: str | None = None) -> client.RemoteFile:
    return client.file_metadata(repo, name, token=token, retry=FAST_RETRY)


def test_gated_without_token_asks_for_one(gated_hub: FakeHub) -> None:
    with pytest.raises(TokenRequiredError) as info:
        head(GATED, "model.gguf")
    text = str(info.value)
    assert "gated" in text and "llama-desk token set" in text
    assert f"{gated_hub.hub_url}/{GATED}" in text


def test_gated_without_access_links_to_the_model_page(gated_hub: FakeHub) -> None:
    with pytest.raises(AccessNotGrantedError) as info:
        head(GATED, "model.gguf", TOKEN)
    text = str(info.value)
    assert "request it on" in text and "a day or two" in text
    assert f"{gated_hub.hub_url}/{GATED}" in text
    assert TOKEN not in text
    gated_hub.granted[TOKEN] = {GATED}
    assert head(GATED, "model.gguf", TOKEN).size == 104


def test_rejected_token(gated_hub: FakeHub) -> None:
    bad = "hf_revokedREVOKEDrevoked000000000"
    with pytest.raises(TokenRejectedError) as info:
        head(GATED, "model.gguf", bad)
    assert "invalid or revoked" in str(info.value) and bad not in str(info.value)
    with pytest.raises(TokenRejectedError):
        client.whoami(bad, retry=FAST_RETRY)
    assert client.whoami(TOKEN, retry=FAST_RETRY) == "alice"


def test_repo_and_file_not_found(gated_hub: FakeHub, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="Repository nobody/nothing not found"):
        head("nobody/nothing", "x.gguf")
    gated_hub.add("someone/models", "a.Q4_K_M.gguf", b"x")
    gated_hub.add("someone/models", "b.Q8_0.gguf", b"y")
    with pytest.raises(NotFoundError, match="not found in someone/models"):
        head("someone/models", "missing.gguf")
    with pytest.raises(NotFoundError, match=r"its \.gguf files: a\.Q4_K_M\.gguf, b\.Q8_0\.gguf"):
        fetch_job("someone/models", "missing.gguf", token=None, dest_dir=tmp_path,
                  control=Control(), retry=FAST_RETRY)


def test_hub_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(HubUnreachableError, match="Cannot reach the Hugging Face Hub"):
        head("TheBloke/Llama-2-7B-Chat-GGUF", "x.gguf")


def test_server_errors_retried_then_reported(gated_hub: FakeHub) -> None:
    gated_hub.add("o/r", "f.gguf", b"GGUF")
    gated_hub.fail_statuses.extend([502, 500])
    assert head("o/r", "f.gguf").size == 4  # two failures, third attempt succeeds
    gated_hub.fail_statuses.extend([500, 500, 500])
    with pytest.raises(ServerError, match=r"HTTP 500.*try again later"):
        head("o/r", "f.gguf")
    assert gated_hub.fail_statuses == []


def test_timeouts_and_drops_map_to_retryable_errors() -> None:
    timeout = client.map_error(httpx2.ReadTimeout("slow"), repo_id="o/r", had_token=False)
    assert isinstance(timeout, ServerError) and "timed out" in str(timeout)
    drop = client.map_error(httpx2.RemoteProtocolError("peer closed"), repo_id="o/r",
                            had_token=False)
    assert isinstance(drop, ServerError) and client.is_retryable(drop)
    other = client.map_error(ValueError("odd"), repo_id="o/r", had_token=False)
    assert type(other) is HubError


def test_retry_backoff_grows_and_is_bounded() -> None:
    policy = client.RetryPolicy(attempts=6, base_delay=1.0, max_delay=5.0)
    assert [policy.delay(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]
