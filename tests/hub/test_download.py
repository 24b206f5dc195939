"""Resumable, verified single-file downloads against the loopback Hub emulator."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from app.hub import client
from app.hub.download import Control, download_file, part_paths
from app.hub.errors import (
    ChecksumMismatchError,
    DiskSpaceError,
    DownloadStopped,
    HubUnreachableError,
    ServerError,
)
from tests.hub.fixtures import FAST_RETRY, TOKEN, files_containing
from tests.hub.hub_server import FakeHub

REPO = "TheBloke/Llama-2-7B-Chat-GGUF"
NAME = "llama-2-7b-chat.Q4_K_M.gguf"
ONE_TRY = client.RetryPolicy(attempts=1, base_delay=0.0)


def payload(n: int = 3 * 1024 * 1024 + 12345, seed: int = 1) -> bytes:
    import random

    return random.Random(seed).randbytes(n)


def remote(token: str | None = None, name: str = NAME, repo: str = REPO) -> client.RemoteFile:
    return client.file_metadata(repo, name, token=token, retry=FAST_RETRY)


def test_full_download_through_the_cdn(fake_hub: FakeHub, tmp_path: Path) -> None:
    data = payload()
    fake_hub.add(REPO, NAME, data)
    meta = remote()
    assert meta.size == len(data)
    assert meta.commit and meta.sha256 == fake_hub.repos[REPO][NAME].sha256
    seen: list[tuple[int, int]] = []
    dest = download_file(meta, tmp_path / NAME, retry=FAST_RETRY,
                         on_progress=lambda d, t: seen.append((d, t)))
    assert dest.read_bytes() == data
    assert not any(p.exists() for p in part_paths(dest))
    assert seen[-1] == (len(data), len(data))
    assert [r.server for r in fake_hub.log("GET")] == ["hub", "cdn"]


def test_token_goes_to_the_hub_only(fake_hub: FakeHub, tmp_path: Path) -> None:
    gated = "meta-llama/Llama-2-7b-chat-hf"
    fake_hub.add(gated, "model.gguf", payload(2_000_000))
    fake_hub.gated.add(gated)
    fake_hub.users[TOKEN] = "alice"
    fake_hub.granted[TOKEN] = {gated}
    meta = remote(TOKEN, "model.gguf", gated)
    assert TOKEN not in meta.url
    download_file(meta, tmp_path / "model.gguf", token=TOKEN, retry=FAST_RETRY)
    hub_auth = [r.headers.get("Authorization") for r in fake_hub.requests if r.server == "hub"]
    assert hub_auth and all(a == f"Bearer {TOKEN}" for a in hub_auth)
    cdn = [r for r in fake_hub.requests if r.server == "cdn"]
    assert cdn and all("Authorization" not in r.headers for r in cdn)
    assert files_containing(tmp_path, TOKEN) == []


def test_interrupt_then_resume_fetches_only_missing_bytes(
    fake_hub: FakeHub, tmp_path: Path
) -> None:
    data = payload()
    fake_hub.add(REPO, NAME, data)
    fake_hub.drop_after.append(1_500_000)
    dest = tmp_path / NAME
    with pytest.raises(ServerError, match="dropped"):
        download_file(remote(), dest, retry=ONE_TRY)
    part, meta_path = part_paths(dest)
    have = part.stat().st_size
    assert have == 1_500_000
    meta = json.loads(meta_path.read_text())
    assert meta["size"] == len(data) and meta["sha256"] == fake_hub.repos[REPO][NAME].sha256
    assert meta["url"].endswith(f"/{REPO}/resolve/main/{NAME}")
    served_before = fake_hub.body_bytes
    notices: list[str] = []
    download_file(remote(), dest, retry=ONE_TRY, on_notice=notices.append)
    assert dest.read_bytes() == data
    assert fake_hub.body_bytes - served_before == len(data) - have
    assert fake_hub.log("GET")[-1].headers["Range"] == f"bytes={have}-"
    assert any("Resuming" in n for n in notices)


def test_a_complete_partial_is_verified_without_another_request(
    fake_hub: FakeHub, tmp_path: Path
) -> None:
    data = payload()
    fake_hub.add(REPO, NAME, data)
    fake_hub.drop_after.append(len(data) - 1000)
    dest = tmp_path / NAME
    with pytest.raises(ServerError, match="dropped"):
        download_file(remote(), dest, retry=ONE_TRY)
    part = part_paths(dest)[0]
    with part.open("ab") as fh:  # the last bytes arrived, but the run stopped before finishing
        fh.write(data[-1000:])
    gets = len(fake_hub.log("GET"))
    assert download_file(remote(), dest, retry=ONE_TRY).read_bytes() == data
    assert len(fake_hub.log("GET")) == gets  # no Range GET past the end (no 416 to handle)


def test_drop_is_retried_automatically(fake_hub: FakeHub, tmp_path: Path) -> None:
    data = payload()
    fake_hub.add(REPO, NAME, data)
    fake_hub.drop_after.extend([700_000, 900_000])
    notices: list[str] = []
    dest = download_file(remote(), tmp_path / NAME, retry=FAST_RETRY, on_notice=notices.append)
    assert dest.read_bytes() == data
    assert fake_hub.body_bytes == len(data)  # nothing fetched twice
    assert sum("Retrying" in n for n in notices) == 2


def test_file_changed_upstream_starts_over(fake_hub: FakeHub, tmp_path: Path) -> None:
    fake_hub.add(REPO, NAME, payload(seed=1))
    fake_hub.drop_after.append(1_000_000)
    dest = tmp_path / NAME
    with pytest.raises(ServerError):
        download_file(remote(), dest, retry=ONE_TRY)
    new = payload(seed=2)
    fake_hub.add(REPO, NAME, new)
    notices: list[str] = []
    download_file(remote(), dest, retry=ONE_TRY, on_notice=notices.append)
    assert dest.read_bytes() == new
    assert any("changed upstream" in n for n in notices)
    assert "Range" not in fake_hub.log("GET")[-1].headers


def test_corrupted_download_is_quarantined(fake_hub: FakeHub, tmp_path: Path) -> None:
    f = fake_hub.add(REPO, NAME, payload())
    f.advertised_sha256 = "ab" * 32  # the Hub's hash no longer matches the bytes served
    dest = tmp_path / NAME
    with pytest.raises(ChecksumMismatchError, match="quarantine") as info:
        download_file(remote(), dest, retry=FAST_RETRY)
    assert "download it again" in str(info.value)
    assert not dest.exists() and not part_paths(dest)[0].exists()
    assert len(list((tmp_path / "quarantine").iterdir())) == 1


def test_corrupted_partial_on_disk_is_detected(fake_hub: FakeHub, tmp_path: Path) -> None:
    data = payload()
    fake_hub.add(REPO, NAME, data)
    fake_hub.drop_after.append(2_000_000)
    dest = tmp_path / NAME
    with pytest.raises(ServerError):
        download_file(remote(), dest, retry=ONE_TRY)
    part = part_paths(dest)[0]
    with part.open("r+b") as fh:  # a bit flips on disk while the download is paused
        fh.seek(12345)
        fh.write(b"\x00\xff\x00")
    with pytest.raises(ChecksumMismatchError):
        download_file(remote(), dest, retry=ONE_TRY)
    assert not dest.exists()


def test_server_errors_are_retried_then_reported(fake_hub: FakeHub, tmp_path: Path) -> None:
    data = payload(100_000)
    fake_hub.add(REPO, NAME, data)
    fake_hub.get_fail_statuses.extend([500, 503])
    dest = download_file(remote(), tmp_path / NAME, retry=FAST_RETRY)
    assert dest.read_bytes() == data
    fake_hub.get_fail_statuses.extend([500] * 5)
    with pytest.raises(ServerError, match=r"HTTP 500.*try again later"):
        download_file(remote(), tmp_path / "again.gguf", retry=FAST_RETRY)


def test_pause_keeps_and_cancel_removes_the_partial(fake_hub: FakeHub, tmp_path: Path) -> None:
    fake_hub.add(REPO, NAME, payload())
    dest = tmp_path / NAME
    control = Control()
    with pytest.raises(DownloadStopped) as stop:
        download_file(remote(), dest, control=control, retry=FAST_RETRY,
                      on_progress=lambda d, t: control.pause() if d else None, chunk_size=1 << 20)
    assert stop.value.reason == "paused"
    assert part_paths(dest)[0].stat().st_size >= 1 << 20
    control = Control()
    with pytest.raises(DownloadStopped) as stop:
        download_file(remote(), dest, control=control, retry=FAST_RETRY,
                      on_progress=lambda d, t: control.cancel())
    assert stop.value.reason == "cancelled"
    assert not any(p.exists() for p in part_paths(dest))


def test_disk_space_checked_before_starting(
    fake_hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_hub.add(REPO, NAME, payload())
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage._replace(free=1_000_000))
    with pytest.raises(DiskSpaceError, match=r"needs 3\.2 MB, only 1\.0 MB free"):
        download_file(remote(), tmp_path / NAME, retry=FAST_RETRY)
    assert fake_hub.log("GET") == []


def test_offline_mode_blocks_downloads(
    fake_hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_hub.add(REPO, NAME, payload(1000))
    meta = remote()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubUnreachableError, match="Offline mode"):
        download_file(meta, tmp_path / NAME, retry=FAST_RETRY)
    with pytest.raises(HubUnreachableError, match="Offline mode"):
        remote()
