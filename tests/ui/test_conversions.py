"""The model manager offers the official weights: catalogue rows, stages, Cancel, folder imports."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import pytest

from app.hub import installed, token_store
from app.hub.convert_jobs import ConvertManager, ConvertSnapshot, ConvertState
from app.hub.manager import DownloadManager
from app.settings import AppSettings
from app.ui.model_manager import ModelManager
from tests.convert.fixtures import (
    ckpt_root,
    hf_folder,
    meta_folder,
    serve_checkpoint,
    sp,
    tiny_model,
    tokenizer_model,
)
from tests.hub.fixtures import FAST_RETRY, TOKEN, fake_hub, memory_keyring
from tests.hub.hub_server import FakeHub

# fixtures used by name:
__all__ = ["ckpt_root", "fake_hub", "hf_folder", "memory_keyring", "meta_folder", "sp",
           "tiny_model", "tokenizer_model"]
REPO = "meta-llama/Llama-2-7b-chat-hf"


@pytest.fixture(autouse=True)
def _keyring(memory_keyring: Any) -> Any:
    return memory_keyring


@pytest.fixture
def dialog(qtbot: Any) -> Any:
    downloads = DownloadManager(token=lambda: None, retry=FAST_RETRY, update_interval=0.0)
    converter = ConvertManager(token=lambda: TOKEN, retry=FAST_RETRY, update_interval=0.0)
    window = ModelManager(AppSettings(), manager=downloads, converter=converter)
    qtbot.add_widget(window)
    yield window
    window.shutdown()
    from app.ui.tasks import wait_for_background

    wait_for_background(10_000)


def official_item(window: Any, title: str, quant: str) -> Any:
    for i in range(window.tree.topLevelItemCount()):
        top = window.tree.topLevelItem(i)
        if top.text(0).startswith(title):
            return next(top.child(j) for j in range(top.childCount()) if top.child(j).text(0) == quant)
    raise AssertionError(f"no {title} in the catalogue")




@pytest.fixture
def served(fake_hub: FakeHub, hf_folder: Path) -> FakeHub:
    serve_checkpoint(fake_hub, REPO, hf_folder)
    fake_hub.users[TOKEN] = "alice"
    fake_hub.granted.setdefault(TOKEN, set()).add(REPO)
    return fake_hub


def test_catalogue_lists_official_repos_with_gating_disk_time_and_token_state(
        qtbot: Any, dialog: Any) -> None:
    tree = dialog.tree
    tops = {tree.topLevelItem(i).text(0): tree.topLevelItem(i).text(3)
            for i in range(tree.topLevelItemCount())}
    for size in ("7B", "13B", "70B"):
        assert tops[f"Llama 2 {size} Chat (official weights)"].startswith(
            "official, gated: request access first")
    assert "Llama-2 7B chat" in tops  # next to TheBloke's GGUFs
    item = official_item(dialog, "Llama 2 70B Chat", "Q4_K_M")
    assert re.fullmatch(r"needs ~[\d.]+ GB disk, ~[\d.]+ (min|h) to convert", item.text(3))
    assert item.toolTip(0).endswith("/meta-llama/Llama-2-70b-chat-hf")
    qtbot.waitUntil(lambda: item.text(2) != "…", timeout=30_000)  # a fit verdict like the rest
    dialog.tree.setCurrentItem(item)
    qtbot.waitUntil(lambda: "gated: request access first" in dialog.message.text(), timeout=10_000)
    text = dialog.message.text()
    from app.hub.client import repo_page

    assert f'href="{repo_page("meta-llama/Llama-2-70b-chat-hf")}"' in text
    assert "Hugging Face token: not set" in text
    token_store.set_token(TOKEN, check=False)
    dialog.tree.setCurrentItem(official_item(dialog, "Llama 2 7B Chat", "Q8_0"))
    qtbot.waitUntil(lambda: "Hugging Face token: set" in dialog.message.text(), timeout=10_000)


def test_official_download_shows_every_stage_and_installs(qtbot: Any, dialog: Any,
                                                          served: FakeHub) -> None:
    seen: list[str] = []
    dialog.conversions.jobs.subscribe(lambda s: seen.append(s.state.value))
    dialog.tree.setCurrentItem(official_item(dialog, "Llama 2 7B Chat", "Q8_0"))
    with qtbot.waitSignal(dialog.installed_changed, timeout=60_000):
        dialog.download_selected()
    [job] = dialog.conversions.rows
    assert dialog.job_state(job) == "done"
    assert {"downloading", "converting", "quantizing", "verifying"} <= set(seen)
    assert "converted and verified" in dialog.message.text()
    bar = dialog.table.cellWidget(dialog.conversions.rows[job], 1)
    assert bar.value() == 1000 and bar.format().startswith("Verify")
    names = [dialog.installed.item(r, 0).text() for r in range(dialog.installed.rowCount())]
    assert "Llama 2 7B Chat (official, Q8_0)" in names


def test_cancel_mid_download_leaves_nothing_installed(qtbot: Any, dialog: Any,
                                                      served: FakeHub) -> None:
    gate, reached = threading.Event(), threading.Event()

    def hold(snap: ConvertSnapshot) -> None:  # stalls the worker inside the download
        if snap.state is ConvertState.DOWNLOADING and snap.done > 1_000_000 and not reached.is_set():
            reached.set()
            gate.wait(30)

    dialog.conversions.jobs.subscribe(hold)
    job = dialog.conversions.start_repo(REPO, "Q4_K_M")
    qtbot.waitUntil(reached.is_set, timeout=30_000)
    qtbot.waitUntil(lambda: dialog.job_state(job).startswith("downloading"), timeout=10_000)
    dialog.table.selectRow(dialog.conversions.rows[job])
    dialog._job_action("cancel")
    gate.set()
    qtbot.waitUntil(lambda: dialog.job_state(job).startswith("cancelled"), timeout=30_000)
    assert [m for m in installed.list_installed() if not m.builtin] == []
    from app import paths

    assert list(paths.models_dir().iterdir()) == []


def test_convert_a_checkpoint_folder_from_the_window(qtbot: Any, dialog: Any, meta_folder: Path,
                                                     tmp_path: Path) -> None:
    assert dialog.conversions.start_folder(str(tmp_path), "Q8_0") == ""
    assert "No Llama checkpoint" in dialog.message.text()
    with qtbot.waitSignal(dialog.installed_changed, timeout=60_000):
        job = dialog.conversions.start_folder(str(meta_folder), "Q8_0")
    assert dialog.job_state(job) == "done"
    assert dialog.table.item(dialog.conversions.rows[job], 0).text() == "llama-2-tiny-chat → Q8_0"
