"""Official weights from the loopback Hub: gated access, exact files, convert, register, resume."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from app import paths
from app.hub import installed
from app.hub.convert_jobs import ConvertManager, ConvertSnapshot, ConvertState
from app.hub.official import inspect_repo, source_dir
from app.units import format_estimate
from tests.convert.fixtures import (
    ckpt_root,
    hf_folder,
    meta_folder,
    serve_checkpoint,
    sp,
    tiny_model,
    tokenizer_model,
)
from tests.hub.fixtures import FAST_RETRY, TOKEN
from tests.hub.hub_server import FakeHub

# fixtures used by name:
__all__ = ["ckpt_root", "hf_folder", "meta_folder", "sp", "tiny_model", "tokenizer_model"]

HF_REPO = "meta-llama/Llama-2-7b-chat-hf"
META_REPO = "meta-llama/Llama-2-7b-chat"


def manager(token: str | None = TOKEN, events: list[ConvertSnapshot] | None = None) -> ConvertManager:
    return ConvertManager(token=lambda: token, retry=FAST_RETRY, update_interval=0.0,
                          on_update=events.append if events is not None else None)


def grant(hub: FakeHub, repo: str) -> None:
    hub.users[TOKEN] = "alice"
    hub.granted.setdefault(TOKEN, set()).add(repo)


def registered() -> list[installed.InstalledModel]:
    return [m for m in installed.list_installed() if not m.builtin]


def models_dir_files() -> list[str]:
    return sorted(p.name for p in paths.models_dir().iterdir())


def fetched(hub: FakeHub, repo: str) -> set[str]:
    """Files whose bytes were requested (GET on the CDN)."""
    prefix = f"/cdn/{repo}/"
    return {r.path.removeprefix(prefix) for r in hub.log("GET") if r.path.startswith(prefix)}


def run(repo: str, quant: str = "Q8_0", token: str | None = TOKEN, **kw: Any) -> ConvertSnapshot:
    jobs = manager(token)
    try:
        job = jobs.add_repo(repo, quant, **kw)
        return jobs.wait(job, timeout=120)
    finally:
        jobs.shutdown()


def test_gated_repo_without_a_token_says_what_to_do(fake_hub: FakeHub, hf_folder: Path) -> None:
    serve_checkpoint(fake_hub, HF_REPO, hf_folder)
    snap = run(HF_REPO, token=None)
    assert snap.state is ConvertState.FAILED
    assert "is gated" in (snap.error or "") and "llama-desk token set" in (snap.error or "")
    assert registered() == [] and not source_dir(HF_REPO).exists()


def test_token_without_access_links_the_model_page(fake_hub: FakeHub, hf_folder: Path) -> None:
    serve_checkpoint(fake_hub, HF_REPO, hf_folder)
    fake_hub.users[TOKEN] = "alice"
    snap = run(HF_REPO)
    assert snap.state is ConvertState.FAILED
    assert "not been granted access" in (snap.error or "")
    assert f"{fake_hub.hub_url}/{HF_REPO}" in (snap.error or "")
    assert TOKEN not in (snap.error or "")
    assert registered() == []


def test_hf_repo_downloads_exactly_the_needed_files_then_converts_and_registers(
        fake_hub: FakeHub, hf_folder: Path) -> None:
    serve_checkpoint(fake_hub, HF_REPO, hf_folder)
    grant(fake_hub, HF_REPO)
    events: list[ConvertSnapshot] = []
    jobs = manager(events=events)
    snap = jobs.wait(jobs.add_repo(HF_REPO, "Q8_0"), timeout=120)
    jobs.shutdown()
    assert snap.state is ConvertState.DONE, snap.error
    assert snap.name == "Llama 2 7B Chat (official, Q8_0)"
    assert fetched(fake_hub, HF_REPO) == {
        "config.json", "generation_config.json", "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors", "model.safetensors.index.json", "tokenizer.model",
        "tokenizer_config.json"}
    states = [e.state for e in events]
    for state in (ConvertState.DOWNLOADING, ConvertState.CONVERTING, ConvertState.QUANTIZING,
                  ConvertState.VERIFYING, ConvertState.DONE):
        assert state in states
    assert all(e.done <= e.total for e in events if e.total and e.state is ConvertState.DOWNLOADING)
    [model] = registered()
    assert (model.name, model.quantization, model.source, model.repo_id) == (
        "Llama 2 7B Chat (official, Q8_0)", "Q8_0", "converted", HF_REPO)
    assert model.origin == f"converted from {HF_REPO}"
    assert models_dir_files() == ["llama-2-7b-chat-hf.official.Q8_0.gguf"]  # sources deleted
    gets = len(fake_hub.log("GET"))
    assert run(HF_REPO).state is ConvertState.DONE  # already installed: nothing fetched again
    assert len(fake_hub.log("GET")) == gets and len(registered()) == 1
    installed.remove_model(model.name)
    assert models_dir_files() == []  # a converted file is the app's: removing deletes it


def test_meta_layout_repo_checks_md5_and_converts(fake_hub: FakeHub, meta_folder: Path) -> None:
    serve_checkpoint(fake_hub, META_REPO, meta_folder)
    grant(fake_hub, META_REPO)
    events: list[ConvertSnapshot] = []
    jobs = manager(events=events)
    snap = jobs.wait(jobs.add_repo(META_REPO, "f16"), timeout=120)
    jobs.shutdown()
    assert snap.state is ConvertState.DONE, snap.error
    assert ConvertState.CHECKING in [e.state for e in events]
    assert ConvertState.QUANTIZING not in [e.state for e in events]  # F16 needs no quantizer
    assert fetched(fake_hub, META_REPO) == {"checklist.chk", "consolidated.00.pth",
                                            "consolidated.01.pth", "params.json", "tokenizer.model",
                                            "tokenizer_checklist.chk"}
    [model] = registered()
    assert model.name == "Llama 2 7B Chat (official, F16)" and model.quantization == "F16"


def test_keep_source_keeps_the_download_and_the_f16_intermediate(fake_hub: FakeHub,
                                                                 hf_folder: Path) -> None:
    serve_checkpoint(fake_hub, HF_REPO, hf_folder)
    grant(fake_hub, HF_REPO)
    snap = run(HF_REPO, "Q4_K_M", keep_source=True)
    assert snap.state is ConvertState.DONE, snap.error
    kept = sorted(p.name for p in source_dir(HF_REPO).iterdir())
    assert "model-00001-of-00002.safetensors" in kept
    assert "llama-2-7b-chat-hf.official.Q4_K_M.F16.gguf" in kept
    assert not any(name.endswith(".part") for name in kept)


def test_pause_keeps_the_download_and_resume_continues_where_it_stopped(
        fake_hub: FakeHub, hf_folder: Path) -> None:
    serve_checkpoint(fake_hub, HF_REPO, hf_folder)
    grant(fake_hub, HF_REPO)
    jobs = manager()
    paused: list[str] = []
    messages: list[str] = []

    def pause_in_the_big_shard(snap: ConvertSnapshot) -> None:
        messages.append(snap.message)
        if snap.state is ConvertState.DOWNLOADING and snap.done > 2_000_000 and not paused:
            paused.append(snap.job_id)
            jobs.pause(snap.job_id)

    jobs.subscribe(pause_in_the_big_shard)
    job = jobs.add_repo(HF_REPO, "Q8_0")
    snap = jobs.wait(job, timeout=60)
    assert snap.state is ConvertState.PAUSED
    kept = {p.name for p in source_dir(HF_REPO).iterdir()}
    assert "model-00001-of-00002.safetensors" in kept  # finished files stay verified
    assert "model-00002-of-00002.safetensors.part" in kept  # the one in flight stays partial
    assert registered() == []
    served_before = fake_hub.body_bytes
    jobs.resume(job)
    snap = jobs.wait(job, timeout=120)
    jobs.shutdown()
    assert snap.state is ConvertState.DONE, snap.error
    assert any(m.startswith("Resuming model-00002-of-00002.safetensors at") for m in messages)
    resent = fake_hub.body_bytes - served_before
    assert resent < (hf_folder / "model-00002-of-00002.safetensors").stat().st_size
    if resent:  # the partial was not complete yet: the rest came with a Range request
        assert any("Range" in r.headers for r in fake_hub.log("GET"))
    assert len(registered()) == 1


def test_cancel_during_conversion_leaves_nothing(fake_hub: FakeHub, hf_folder: Path) -> None:
    serve_checkpoint(fake_hub, HF_REPO, hf_folder)
    grant(fake_hub, HF_REPO)
    jobs = manager()
    jobs.subscribe(lambda s: jobs.cancel(s.job_id) if s.state is ConvertState.QUANTIZING else None)
    snap = jobs.wait(jobs.add_repo(HF_REPO, "Q8_0"), timeout=120)
    jobs.shutdown()
    assert snap.state is ConvertState.CANCELLED
    assert registered() == [] and models_dir_files() == []
    assert not source_dir(HF_REPO).exists()


def test_a_non_llama_repo_stops_after_config_json(fake_hub: FakeHub, hf_folder: Path,
                                                  tmp_path: Path) -> None:
    import json
    import shutil

    folder = Path(shutil.copytree(hf_folder, tmp_path / "gpt"))
    config = json.loads((folder / "config.json").read_text())
    config.update(architectures=["MistralForCausalLM"], model_type="mistral")
    (folder / "config.json").write_text(json.dumps(config))
    serve_checkpoint(fake_hub, "someone/not-llama", folder, gated=False)
    snap = run("someone/not-llama", token=None)
    assert snap.state is ConvertState.FAILED
    assert "MistralForCausalLM model, not Llama" in (snap.error or "")
    assert not any(n.endswith(".safetensors") for n in fetched(fake_hub, "someone/not-llama"))
    assert registered() == []


def test_a_corrupted_shard_on_the_hub_is_quarantined_and_nothing_registered(
        fake_hub: FakeHub, hf_folder: Path) -> None:
    serve_checkpoint(fake_hub, HF_REPO, hf_folder)
    grant(fake_hub, HF_REPO)
    fake_hub.repos[HF_REPO]["model-00002-of-00002.safetensors"].advertised_sha256 = "0" * 64
    snap = run(HF_REPO)
    assert snap.state is ConvertState.FAILED and "failed verification" in (snap.error or "")
    assert registered() == []


def test_not_enough_disk_is_refused_before_downloading(fake_hub: FakeHub, hf_folder: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from app.convert import pipeline

    serve_checkpoint(fake_hub, HF_REPO, hf_folder)
    grant(fake_hub, HF_REPO)
    monkeypatch.setattr(pipeline.shutil, "disk_usage",
                        lambda _p: SimpleNamespace(total=10**12, used=10**12, free=5_000_000))
    snap = run(HF_REPO, "Q4_K_M")
    error = snap.error or ""
    assert snap.state is ConvertState.FAILED
    assert error.startswith(f"Not enough disk space to download and convert {HF_REPO} to Q4_K_M")
    assert "MB download + " in error and "for the F16 intermediate" in error
    assert "only 5.0 MB free" in error
    assert fetched(fake_hub, HF_REPO) == set() and registered() == []


def test_gguf_repos_are_not_conversion_candidates(fake_hub: FakeHub) -> None:
    fake_hub.add("TheBloke/x-GGUF", "x.Q4_K_M.gguf", b"GGUF....")
    fake_hub.add("TheBloke/x-GGUF", "config.json", b"{}")
    assert inspect_repo("TheBloke/x-GGUF", token=None) is None


def test_catalogue_official_entries_give_disk_and_time() -> None:
    from app.hub import catalogue

    m7 = catalogue.official("META-LLAMA/llama-2-7b-chat-hf")
    assert m7 is not None and m7.size_class == "7B"
    assert m7.disk_bytes("F16") == 2 * m7.source_bytes  # download + F16 result
    assert m7.disk_bytes("Q4_K_M") == 2 * m7.source_bytes + m7.result_bytes("Q4_K_M")
    assert 3.9e9 < m7.result_bytes("Q4_K_M") < 4.3e9  # TheBloke's file is 4.08 GB
    assert m7.convert_seconds("Q4_K_M", 2) > m7.convert_seconds("Q8_0", 2) > m7.convert_seconds("F16")
    assert m7.convert_seconds("Q4_K_M", 8) < m7.convert_seconds("Q4_K_M", 2)
    assert format_estimate(30) == "~1 min" and format_estimate(3 * 3600) == "~3.0 h"
    assert [m.size_class for m in catalogue.official_models()] == ["7B", "13B", "70B"]
