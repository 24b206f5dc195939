"""The download queue: several jobs, pause/resume/cancel, split files joined, registration."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from app import paths
from app.hub import installed
from app.hub.manager import DownloadManager, JobSnapshot, JobState
from tests.hub.fixtures import FAST_RETRY, tiny_gguf
from tests.hub.hub_server import FakeHub

R7 = "TheBloke/Llama-2-7B-Chat-GGUF"
R70 = "TheBloke/Llama-2-70B-Chat-GGUF"
Q4 = "llama-2-7b-chat.Q4_K_M.gguf"
Q6_70 = "llama-2-70b-chat.Q6_K.gguf"


@pytest.fixture
def gguf(tmp_path: Path) -> bytes:
    return tiny_gguf(tmp_path / "src.gguf", payload_mib=3)


def manager(**kw: object) -> DownloadManager:
    kw.setdefault("update_interval", 0.0)
    return DownloadManager(token=lambda: None, retry=FAST_RETRY, **kw)  # type: ignore[arg-type]


def test_download_registers_a_verified_model(fake_hub: FakeHub, gguf: bytes) -> None:
    fake_hub.add(R7, Q4, gguf)
    updates: list[JobSnapshot] = []
    threads: set[str] = set()

    def listen(snap: JobSnapshot) -> None:
        updates.append(snap)
        threads.add(threading.current_thread().name)

    mgr = manager(on_update=listen)
    job = mgr.add(R7, Q4)
    snap = mgr.wait(job, timeout=30)
    mgr.shutdown()
    assert snap.state is JobState.DONE, snap.error
    assert snap.path == paths.models_dir() / Q4 and snap.path.read_bytes() == gguf
    assert snap.done == snap.total == len(gguf)
    states = [u.state for u in updates]
    assert states[0] is JobState.QUEUED and states[-1] is JobState.DONE
    assert JobState.DOWNLOADING in states and JobState.VERIFYING in states
    assert "downloads" in threads
    model = installed.resolve_model("llama-2-7b-chat.Q4_K_M")
    assert model.source == "hub" and model.repo_id == R7 and model.quantization == "Q4_K_M"
    assert model.sha256 == fake_hub.repos[R7][Q4].sha256


def test_queue_runs_jobs_in_order_and_skips_installed(fake_hub: FakeHub, gguf: bytes,
                                                      tmp_path: Path) -> None:
    other = tiny_gguf(tmp_path / "b.gguf", payload_mib=1, seed=3)
    fake_hub.add(R7, Q4, gguf)
    fake_hub.add(R7, "llama-2-7b-chat.Q2_K.gguf", other)
    mgr = manager()
    first, second = mgr.add(R7, Q4), mgr.add(R7, "llama-2-7b-chat.Q2_K.gguf")
    assert mgr.add(R7, Q4) == first  # the same file is not queued twice
    assert mgr.wait(second, timeout=30).state is JobState.DONE
    assert mgr.snapshot(first).state is JobState.DONE
    served = fake_hub.body_bytes
    again = mgr.add(R7, Q4)
    snap = mgr.wait(again, timeout=30)
    mgr.shutdown()
    assert snap.state is JobState.DONE and "already installed" in snap.message
    assert fake_hub.body_bytes == served


def test_pause_resume_and_cancel(fake_hub: FakeHub, gguf: bytes) -> None:
    fake_hub.add(R7, Q4, gguf)
    mgr = manager()
    paused = threading.Event()

    def pause_once(snap: JobSnapshot) -> None:
        if snap.state is JobState.DOWNLOADING and snap.done and not paused.is_set():
            paused.set()
            mgr.pause(snap.job_id)

    mgr.subscribe(pause_once)
    job = mgr.add(R7, Q4)
    snap = mgr.wait(job, timeout=30)
    assert snap.state is JobState.PAUSED
    kept = snap.done
    assert 0 < kept < len(gguf)
    mgr.resume(job)
    snap = mgr.wait(job, timeout=30)
    assert snap.state is JobState.DONE and snap.path is not None
    assert snap.path.read_bytes() == gguf
    # resume asked only for the missing bytes
    assert fake_hub.log("GET")[-1].headers["Range"] == f"bytes={kept}-"

    fake_hub.add(R7, "llama-2-7b-chat.Q8_0.gguf", gguf)
    cancel_next = threading.Event()

    def cancel(snap: JobSnapshot) -> None:
        if snap.filename.endswith("Q8_0.gguf") and snap.done and not cancel_next.is_set():
            cancel_next.set()
            mgr.cancel(snap.job_id)

    mgr.subscribe(cancel)
    job = mgr.add(R7, "llama-2-7b-chat.Q8_0.gguf")
    snap = mgr.wait(job, timeout=30)
    mgr.shutdown()
    assert snap.state is JobState.CANCELLED
    left = [p.name for p in paths.models_dir().iterdir() if "Q8_0" in p.name]
    assert left == []


def test_pausing_a_queued_job_and_cancelling_a_paused_one(fake_hub: FakeHub, gguf: bytes) -> None:
    fake_hub.add(R7, Q4, gguf)
    mgr = manager()
    job = mgr.add(R7, Q4)
    mgr.pause(job)  # may catch it queued or running: either way it settles as paused or done
    snap = mgr.wait(job, timeout=30)
    assert snap.state in (JobState.PAUSED, JobState.DONE)
    if snap.state is JobState.PAUSED:
        mgr.cancel(job)
        assert mgr.snapshot(job).state is JobState.CANCELLED
    mgr.shutdown()


def test_split_file_is_downloaded_verified_and_joined(fake_hub: FakeHub, gguf: bytes) -> None:
    half = len(gguf) // 2
    fake_hub.add(R70, Q6_70 + "-split-a", gguf[:half])
    fake_hub.add(R70, Q6_70 + "-split-b", gguf[half:])
    mgr = manager()
    snap = mgr.wait(mgr.add(R70, Q6_70), timeout=30)
    mgr.shutdown()
    assert snap.state is JobState.DONE, snap.error
    assert snap.total == len(gguf)
    final = paths.models_dir() / Q6_70
    assert final.read_bytes() == gguf
    assert sorted(p.name for p in paths.models_dir().iterdir()) == [Q6_70]
    assert installed.resolve_model(Q6_70).quantization == "Q6_K"


def test_cancelling_a_split_download_removes_every_part(fake_hub: FakeHub, gguf: bytes) -> None:
    half = len(gguf) // 2
    fake_hub.add(R70, Q6_70 + "-split-a", gguf[:half])
    fake_hub.add(R70, Q6_70 + "-split-b", gguf[half:])
    models = paths.models_dir()
    models.mkdir(parents=True, exist_ok=True)
    before = sorted(p.name for p in models.iterdir())
    mgr = manager()
    seen_part_a = threading.Event()

    def cancel_in_part_b(snap: JobSnapshot) -> None:
        # Progress past the first part: part a is complete, verified and in the ledger.
        if snap.state is JobState.DOWNLOADING and snap.done > half and not seen_part_a.is_set():
            seen_part_a.set()
            assert (models / (Q6_70 + "-split-a")).is_file()
            assert (models / (Q6_70 + ".parts.json")).is_file()
            mgr.cancel(snap.job_id)

    mgr.subscribe(cancel_in_part_b)
    job = mgr.add(R70, Q6_70)
    snap = mgr.wait(job, timeout=30)
    mgr.shutdown()
    assert seen_part_a.is_set()
    assert snap.state is JobState.CANCELLED
    assert sorted(p.name for p in models.iterdir()) == before


def test_corrupt_split_part_fails_then_resumes_only_that_part(
    fake_hub: FakeHub, gguf: bytes
) -> None:
    half = len(gguf) // 2
    fake_hub.add(R70, Q6_70 + "-split-a", gguf[:half])
    part_b = fake_hub.add(R70, Q6_70 + "-split-b", gguf[half:])
    part_b.advertised_sha256 = "cd" * 32
    mgr = manager()
    job = mgr.add(R70, Q6_70)
    snap = mgr.wait(job, timeout=30)
    assert snap.state is JobState.FAILED
    assert snap.error and "failed verification" in snap.error and "quarantine" in snap.error
    part_b.advertised_sha256 = None
    served = fake_hub.body_bytes
    mgr.resume(job)
    snap = mgr.wait(job, timeout=30)
    mgr.shutdown()
    assert snap.state is JobState.DONE, snap.error
    assert fake_hub.body_bytes - served == len(gguf) - half  # part a was kept
    assert (paths.models_dir() / Q6_70).read_bytes() == gguf


def test_split_found_in_any_repo_listing(fake_hub: FakeHub, gguf: bytes) -> None:
    fake_hub.add("someone/big", "big.Q5_K_M.gguf-split-a", gguf[:1000])
    fake_hub.add("someone/big", "big.Q5_K_M.gguf-split-b", gguf[1000:])
    mgr = manager()
    snap = mgr.wait(mgr.add("someone/big", "big.Q5_K_M.gguf"), timeout=30)
    mgr.shutdown()
    assert snap.state is JobState.DONE, snap.error
    assert (paths.models_dir() / "big.Q5_K_M.gguf").read_bytes() == gguf


def test_a_file_that_is_not_a_model_is_quarantined(fake_hub: FakeHub) -> None:
    fake_hub.add(R7, Q4, b"<html>not a model</html>")
    mgr = manager()
    snap = mgr.wait(mgr.add(R7, Q4), timeout=30)
    mgr.shutdown()
    assert snap.state is JobState.FAILED
    assert snap.error and "not a usable model" in snap.error
    assert not (paths.models_dir() / Q4).exists()
    assert (paths.models_dir() / "quarantine" / Q4).exists()
    assert all(m.source != "hub" for m in installed.list_installed())


def test_errors_reach_the_snapshot(fake_hub: FakeHub) -> None:
    mgr = manager()
    snap = mgr.wait(mgr.add("nobody/nothing", "x.gguf"), timeout=30)
    mgr.shutdown()
    assert snap.state is JobState.FAILED and snap.error and "not found" in snap.error
