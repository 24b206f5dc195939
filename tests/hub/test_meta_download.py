"""Meta's route against the loopback CDN: download.sh's files, md5, resume, expiry, coverage."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from app import paths
from app.hub import installed
from app.hub.convert_jobs import ConvertManager, ConvertSnapshot, ConvertState
from app.hub.meta_catalogue import find_meta_model
from app.hub.meta_install import source_root
from app.hub.meta_link import MetaLink
from tests.convert.fixtures import ckpt_root, sp, tiny_model, tokenizer_model
from tests.hub.fixtures import FAST_RETRY, files_containing
from tests.hub.meta_cdn import LICENCE_TEXT, MetaCDN, meta_cdn, meta_tree

__all__ = ["ckpt_root", "meta_cdn", "meta_tree", "sp", "tiny_model", "tokenizer_model"]

M7, M13 = find_meta_model("llama-2-7b-chat"), find_meta_model("llama-2-13b-chat")
SHARD7 = "llama-2-7b-chat/consolidated.00.pth"
DOWNLOAD_SH_7B = {"LICENSE", "USE_POLICY.md", "tokenizer.model", "tokenizer_checklist.chk",
                  "llama-2-7b-chat/checklist.chk", "llama-2-7b-chat/params.json", SHARD7}
EXPIRED = "Meta's download links last 24 hours; request a new one at https://www.llama.com/"


def manager(events: list[ConvertSnapshot] | None = None) -> ConvertManager:
    return ConvertManager(token=lambda: None, retry=FAST_RETRY, update_interval=0.0,
                          on_update=events.append if events is not None else None)


def run(cdn_link: str, model: Any = M7, quant: str = "F16", **kw: Any) -> ConvertSnapshot:
    jobs = manager()
    try:
        return jobs.wait(jobs.add_meta(MetaLink.parse(cdn_link), model, quant, **kw), timeout=120)
    finally:
        jobs.shutdown()


def pause_once_mid_shard(jobs: ConvertManager, cdn: MetaCDN, after: int,
                         messages: list[str] | None = None) -> None:
    """Pause the job once the CDN has sent ``after`` bytes of the 7B shard (throttled)."""
    paused: list[str] = []

    def listen(snap: ConvertSnapshot) -> None:
        if messages is not None:
            messages.append(snap.message)
        if not paused and cdn.served.get(SHARD7, 0) > after:
            paused.append(snap.job_id)
            jobs.pause(snap.job_id)

    cdn.throttle = 2_000_000
    jobs.subscribe(listen)


def registered() -> list[installed.InstalledModel]:
    return [m for m in installed.list_installed() if not m.builtin]


def test_full_download_checks_md5_converts_registers_and_keeps_the_licence(
        meta_cdn: MetaCDN) -> None:
    events: list[ConvertSnapshot] = []
    jobs = manager(events)
    snap = jobs.wait(jobs.add_meta(MetaLink.parse(meta_cdn.new_link()), M7, "Q8_0"), timeout=120)
    jobs.shutdown()
    assert snap.state is ConvertState.DONE, snap.error
    assert snap.name == "Llama 2 7B Chat (Meta, Q8_0)" and snap.title == "llama-2-7b-chat (Meta) → Q8_0"
    assert meta_cdn.fetched() == DOWNLOAD_SH_7B  # exactly download.sh's files for 7B-chat
    assert all(meta_cdn.signed(r.path) for r in meta_cdn.requests)  # never a request without it
    states = [e.state for e in events]
    for state in (ConvertState.DOWNLOADING, ConvertState.CONVERTING, ConvertState.QUANTIZING,
                  ConvertState.VERIFYING):
        assert state in states
    assert ConvertState.CHECKING not in states  # md5 checked while downloading, not read again
    downloads = [e for e in events if e.state is ConvertState.DOWNLOADING]
    assert downloads[-1].done == downloads[-1].total == sum(
        meta_cdn.file(n).size for n in DOWNLOAD_SH_7B)
    [model] = registered()
    assert model.origin == "converted from Meta's download (llama-2-7b-chat)"
    stem = "llama-2-7b-chat.meta.Q8_0"
    assert sorted(p.name for p in paths.models_dir().iterdir()) == [
        f"{stem}.LICENSE", f"{stem}.USE_POLICY.md", f"{stem}.gguf"]  # the sources are gone
    assert [p.name for p in snap.licence] == [f"{stem}.LICENSE", f"{stem}.USE_POLICY.md"]
    assert snap.licence_text is not None and LICENCE_TEXT.strip() in snap.licence_text
    again = run(meta_cdn.new_link(), M7, "F16")  # another quantization: the licence not again
    assert again.state is ConvertState.DONE and again.licence_text is None
    installed.remove_model(model.name)
    assert not any(p.name.startswith(stem) for p in paths.models_dir().iterdir())


def test_13b_downloads_both_shards(meta_cdn: MetaCDN) -> None:
    snap = run(meta_cdn.new_link(), M13, keep_source=True)
    assert snap.state is ConvertState.DONE, snap.error
    assert {n for n in meta_cdn.fetched() if n.endswith(".pth")} == {
        "llama-2-13b-chat/consolidated.00.pth", "llama-2-13b-chat/consolidated.01.pth"}
    kept = source_root(M13)
    assert (kept / "LICENSE").is_file() and (kept / "llama-2-13b-chat" / "params.json").is_file()
    assert not list(kept.rglob("*.part*"))


def test_pause_mid_shard_then_resume_fetches_only_the_missing_bytes(meta_cdn: MetaCDN) -> None:
    size = meta_cdn.file(SHARD7).size
    jobs = manager()
    pause_once_mid_shard(jobs, meta_cdn, size // 3)
    job = jobs.add_meta(MetaLink.parse(meta_cdn.new_link()), M7, "F16")
    assert jobs.wait(job, timeout=60).state is ConvertState.PAUSED
    part = source_root(M7) / (SHARD7 + ".part")
    have = part.stat().st_size
    assert 0 < have < size and registered() == []
    ledger = (source_root(M7) / (SHARD7 + ".part.json")).read_text()
    assert f"{meta_cdn.url}/{SHARD7}" in ledger and "Signature" not in ledger
    meta_cdn.throttle = 0.0
    jobs.resume(job)  # the link is still in memory and valid
    snap = jobs.wait(job, timeout=120)
    jobs.shutdown()
    assert snap.state is ConvertState.DONE, snap.error
    assert meta_cdn.sent(SHARD7)[-1] == (f"bytes={have}-", size - have)  # only the missing bytes


def test_a_changed_file_on_the_cdn_restarts_its_download(meta_cdn: MetaCDN) -> None:
    size = meta_cdn.file(SHARD7).size
    jobs = manager()
    messages: list[str] = []
    pause_once_mid_shard(jobs, meta_cdn, size // 3, messages)
    job = jobs.add_meta(MetaLink.parse(meta_cdn.new_link()), M7, "F16")
    assert jobs.wait(job, timeout=60).state is ConvertState.PAUSED
    meta_cdn.throttle = 0.0
    meta_cdn.file(SHARD7).advertised_sha256 = "new-etag-after-a-reupload"
    jobs.resume(job)
    snap = jobs.wait(job, timeout=120)
    jobs.shutdown()
    assert snap.state is ConvertState.DONE, snap.error
    assert any(f"{SHARD7} changed upstream" in m for m in messages)
    assert meta_cdn.sent(SHARD7)[-1] == ("", size)  # the stale partial was not reused


@pytest.mark.parametrize("damaged,ok", [(1, True), (2, False)])
def test_a_corrupted_shard_is_caught_by_md5_and_fetched_again_once(
        meta_cdn: MetaCDN, damaged: int, ok: bool) -> None:
    meta_cdn.corrupt[SHARD7] = damaged
    events: list[ConvertSnapshot] = []
    jobs = manager(events)
    snap = jobs.wait(jobs.add_meta(MetaLink.parse(meta_cdn.new_link()), M7, "F16"), timeout=120)
    jobs.shutdown()
    gets = [r for r in meta_cdn.ranges(SHARD7)]
    assert len(gets) == 2  # the damaged copy, then one more try
    assert any(f"{SHARD7} does not match checklist.chk" in e.message and "once more" in e.message
               for e in events)
    if ok:
        assert snap.state is ConvertState.DONE, snap.error
        return
    assert snap.state is ConvertState.FAILED
    assert f"{SHARD7} does not match checklist.chk (md5 " in (snap.error or "")
    assert "twice, so it was deleted and nothing was installed" in (snap.error or "")
    assert registered() == [] and not (source_root(M7) / SHARD7).exists()
    assert not (source_root(M7) / (SHARD7 + ".part")).exists()


def test_an_expired_link_says_what_to_do_and_a_new_link_resumes(meta_cdn: MetaCDN) -> None:
    meta_cdn.throttle = 2_000_000
    size = meta_cdn.file(SHARD7).size
    jobs = manager()

    def expire_mid_shard(snap: ConvertSnapshot) -> None:
        if meta_cdn.throttle and meta_cdn.served.get(SHARD7, 0) > size // 3:
            meta_cdn.expired = meta_cdn.cut = True  # and the connection in flight drops

    jobs.subscribe(expire_mid_shard)
    job = jobs.add_meta(MetaLink.parse(meta_cdn.new_link()), M7, "F16")
    snap = jobs.wait(job, timeout=60)
    assert snap.state is ConvertState.FAILED and snap.needs_link
    error = snap.error or ""
    assert error.startswith(EXPIRED) and "expired or was used up" in error
    assert "already downloaded are kept" in error
    have = (source_root(M7) / (SHARD7 + ".part")).stat().st_size
    jobs.resume(job)  # no new link: the old one is gone from memory, so it asks for one
    snap = jobs.wait(job, timeout=30)
    assert snap.state is ConvertState.FAILED and "needs Meta's link again" in (snap.error or "")
    meta_cdn.throttle = 0.0
    again = jobs.add_meta(MetaLink.parse(meta_cdn.new_link()), M7, "F16")
    assert again == job  # the same job continues
    snap = jobs.wait(job, timeout=120)
    jobs.shutdown()
    assert snap.state is ConvertState.DONE, snap.error
    assert meta_cdn.ranges(SHARD7)[-1] == f"bytes={have}-"


def test_a_link_whose_policy_has_expired_is_refused_before_any_request(meta_cdn: MetaCDN) -> None:
    snap = run(meta_cdn.new_link(expires_in=-60))
    assert snap.state is ConvertState.FAILED and (snap.error or "").startswith(EXPIRED)
    assert meta_cdn.requests == []


def test_an_expired_link_on_the_first_file(meta_cdn: MetaCDN) -> None:
    link = meta_cdn.new_link()
    meta_cdn.expired = True
    snap = run(link)
    assert snap.state is ConvertState.FAILED and (snap.error or "").startswith(EXPIRED)
    assert len(meta_cdn.requests) == 1 and registered() == []


def test_a_model_the_link_does_not_cover(meta_cdn: MetaCDN) -> None:
    meta_cdn.covered = {"llama-2-7b-chat"}
    snap = run(meta_cdn.new_link(), M13)
    assert snap.state is ConvertState.FAILED and not snap.needs_link
    assert (snap.error or "").startswith("The link does not cover llama-2-13b-chat: ")
    assert "refused llama-2-13b-chat/checklist.chk (HTTP 403)" in (snap.error or "")
    assert not any(n.endswith(".pth") for n in meta_cdn.fetched())


def test_dropped_connections_are_retried_then_resumable(meta_cdn: MetaCDN) -> None:
    meta_cdn.drops["LICENSE"] = [0, 0]  # headers sent, then the line drops: retried
    snap = run(meta_cdn.new_link())
    assert snap.state is ConvertState.DONE, snap.error
    shard = "llama-2-13b-chat/consolidated.00.pth"
    meta_cdn.drops[shard] = [100_000, 0, 0]  # some bytes, then drops until the retries run out
    jobs = manager()
    job = jobs.add_meta(MetaLink.parse(meta_cdn.new_link()), M13, "F16")
    snap = jobs.wait(job, timeout=60)
    assert snap.state is ConvertState.FAILED and not snap.needs_link
    assert f"The connection to 127.0.0.1 dropped while downloading {shard}." in (snap.error or "")
    assert "Start the same download again to resume: 1" in (snap.error or "")  # MB kept
    jobs.resume(job)  # a valid link stays in memory for a resume
    snap = jobs.wait(job, timeout=120)
    jobs.shutdown()
    assert snap.state is ConvertState.DONE, snap.error
    assert [r for r, _n in meta_cdn.sent(shard)] == ["", "bytes=100000-", "bytes=100000-",
                                                      "bytes=100000-"]


def test_not_enough_disk_is_refused_before_the_weights(meta_cdn: MetaCDN,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from app.convert import pipeline

    monkeypatch.setattr(pipeline.shutil, "disk_usage",
                        lambda _p: SimpleNamespace(total=10**12, used=10**12, free=70_000_000))
    snap = run(meta_cdn.new_link(), M7, "Q4_K_M")  # the small files fit (with a 64 MiB margin)
    error = snap.error or ""
    assert snap.state is ConvertState.FAILED
    assert error.startswith("Not enough disk space to download and convert llama-2-7b-chat to "
                            "Q4_K_M: needs ") and "only 70.0 MB free" in error
    assert "MB download + " in error and "for the F16 intermediate" in error
    assert not any(n.endswith(".pth") for n in meta_cdn.fetched())


def test_cancel_deletes_the_downloaded_files(meta_cdn: MetaCDN) -> None:
    meta_cdn.throttle = 2_000_000
    jobs = manager()
    jobs.subscribe(lambda s: jobs.cancel(s.job_id)
                   if meta_cdn.served.get(SHARD7, 0) > 200_000 else None)
    snap = jobs.wait(jobs.add_meta(MetaLink.parse(meta_cdn.new_link()), M7, "F16"), timeout=60)
    jobs.shutdown()
    assert snap.state is ConvertState.CANCELLED
    assert not source_root(M7).exists() and registered() == []


def test_no_copy_of_the_signature_anywhere(meta_cdn: MetaCDN, llama_desk_home: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    """Every file under the temp home (registry, ledgers, licence, logs) and every log record."""
    caplog.set_level(logging.DEBUG)
    log_file = paths.logs_dir() / "llama-desk.log"
    handler = logging.FileHandler(log_file, encoding="utf-8")
    logging.getLogger().addHandler(handler)
    try:
        jobs = manager()
        seen: list[ConvertSnapshot] = []
        jobs.subscribe(seen.append)
        pause_once_mid_shard(jobs, meta_cdn, 300_000)
        job = jobs.add_meta(MetaLink.parse(meta_cdn.new_link()), M7, "Q8_0", keep_source=True)
        assert jobs.wait(job, timeout=60).state is ConvertState.PAUSED
        paused_files = sorted(p.name for p in source_root(M7).rglob("*"))
        meta_cdn.throttle = 0.0
        jobs.resume(job)
        assert jobs.wait(job, timeout=120).state is ConvertState.DONE
        short_lived = MetaLink.parse(meta_cdn.new_link(expires_in=60))
        meta_cdn.expired = True
        failed = jobs.wait(jobs.add_meta(short_lived, M13, "F16"), timeout=60)
        jobs.shutdown()
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    assert "consolidated.00.pth.part.json" in paused_files  # a ledger was written mid-shard
    assert failed.state is ConvertState.FAILED
    assert log_file.stat().st_size > 0 and "HTTP Request: GET" in caplog.text
    for secret in meta_cdn.secrets:
        assert files_containing(llama_desk_home, secret) == []
        assert secret not in caplog.text
        assert not any(secret in (s.message + (s.error or "")) for s in seen)


def test_a_checklist_naming_a_path_outside_the_folder_is_refused(meta_cdn: MetaCDN,
                                                                 meta_tree: Path) -> None:
    from tests.hub.meta_cdn import REPO

    listed = (meta_tree / "llama-2-7b-chat" / "checklist.chk").read_text()
    meta_cdn.add(REPO, "llama-2-7b-chat/checklist.chk",
                 (listed + f"{'0' * 32}  ../../../.bashrc\n").encode())
    snap = run(meta_cdn.new_link())
    assert snap.state is ConvertState.FAILED
    assert "checklist.chk from 127.0.0.1 lists an odd file name ('../../../.bashrc')" in (
        snap.error or "")
    assert not any(n.endswith(".pth") for n in meta_cdn.fetched()) and registered() == []
