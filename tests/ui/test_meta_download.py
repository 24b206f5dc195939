"""The model manager's "Download from Meta": masked link, models with verdicts, licence once."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtWidgets import QLineEdit

from app.hub import installed
from app.hub.convert_jobs import ConvertManager, ConvertState
from app.hub.manager import DownloadManager
from app.settings import AppSettings
from app.ui.meta_download import MetaDownloadDialog
from app.ui.model_manager import ModelManager
from tests.convert.fixtures import ckpt_root, sp, tiny_model, tokenizer_model
from tests.hub.fixtures import FAST_RETRY
from tests.hub.meta_cdn import LICENCE_TEXT, MetaCDN, meta_cdn, meta_tree

__all__ = ["ckpt_root", "meta_cdn", "meta_tree", "sp", "tiny_model", "tokenizer_model"]


@pytest.fixture
def manager(qtbot: Any) -> Any:
    downloads = DownloadManager(token=lambda: None, retry=FAST_RETRY, update_interval=0.0)
    converter = ConvertManager(token=lambda: None, retry=FAST_RETRY, update_interval=0.0)
    window = ModelManager(AppSettings(), manager=downloads, converter=converter)
    qtbot.add_widget(window)
    yield window
    window.shutdown()
    from app.ui.tasks import wait_for_background

    wait_for_background(10_000)


def open_dialog(window: Any, qtbot: Any) -> MetaDownloadDialog:
    [action] = [a for a in window.add_menu.actions()
                if a.text() == "Download from Meta (link from e-mail)…"]
    action.trigger()
    dialog = window.meta_route.dialog
    assert dialog is not None and dialog.isVisible()
    qtbot.waitUntil(lambda: "…" not in dialog.models.topLevelItem(0).text(3), timeout=10_000)
    return dialog


def choose(dialog: MetaDownloadDialog, title: str) -> None:
    for i in range(dialog.models.topLevelItemCount()):
        item = dialog.models.topLevelItem(i)
        if item is not None and item.text(0) == title:
            dialog.models.setCurrentItem(item)
            return
    raise AssertionError(title)


def test_the_dialog_lists_the_models_with_sizes_and_verdicts(manager: Any, qtbot: Any) -> None:
    dialog = open_dialog(manager, qtbot)
    rows = [dialog.models.topLevelItem(i) for i in range(dialog.models.topLevelItemCount())]
    assert [r.text(0) for r in rows if r is not None] == [
        "Llama 2 7B Chat", "Llama 2 7B", "Llama 2 13B Chat", "Llama 2 13B", "Llama 2 70B Chat",
        "Llama 2 70B"]
    first = rows[0]
    assert first is not None and first.text(1) == "~13.48 GB" and first.text(2).startswith("~4.")
    verdicts = ("fits on GPU", "partial", "CPU only", "won't fit")
    assert all(any(v in r.text(3) for v in verdicts) for r in rows if r is not None)
    dialog.quant.setCurrentText("Q8_0")
    qtbot.waitUntil(lambda: "…" not in dialog.models.topLevelItem(4).text(3), timeout=10_000)
    assert dialog.models.topLevelItem(0).text(2).startswith("~7.")  # the Q8_0 result


def test_the_link_field_is_masked_and_checked_as_you_type(manager: Any, qtbot: Any,
                                                          meta_cdn: MetaCDN) -> None:
    dialog = open_dialog(manager, qtbot)
    assert dialog.field.echoMode() is QLineEdit.EchoMode.Password
    dialog.show_button.click()
    assert dialog.field.echoMode() is QLineEdit.EchoMode.Normal
    dialog.show_button.click()
    choose(dialog, "Llama 2 7B Chat")
    bad = meta_cdn.new_link(star="")
    dialog.field.setText(bad)
    assert "has no `*`" in dialog.link_status.text()
    assert meta_cdn.signature not in dialog.link_status.text()
    assert not dialog.download_button.isEnabled()
    dialog.field.setText(meta_cdn.new_link(expires_in=-30))
    assert "expired" in dialog.link_status.text() and not dialog.download_button.isEnabled()
    dialog.field.setText(meta_cdn.new_link())
    assert "Link to 127.0.0.1, valid until" in dialog.link_status.text()
    assert dialog.download_button.isEnabled()
    assert meta_cdn.requests == []  # checking a link asks nobody


def test_download_converts_registers_and_shows_the_licence_once(
        manager: Any, qtbot: Any, meta_cdn: MetaCDN) -> None:
    dialog = open_dialog(manager, qtbot)
    choose(dialog, "Llama 2 7B Chat")
    dialog.quant.setCurrentText("F16")
    choose(dialog, "Llama 2 7B Chat")
    dialog.field.setText(meta_cdn.new_link())
    dialog.download_button.click()
    assert dialog.field.text() == "" and not dialog.isVisible()
    assert manager.tabs.currentIndex() == 2
    jobs = manager.conversions.jobs
    [snap] = jobs.snapshots()
    qtbot.waitUntil(lambda: jobs.snapshot(snap.job_id).state.finished, timeout=120_000)
    assert jobs.snapshot(snap.job_id).state is ConvertState.DONE
    qtbot.waitUntil(lambda: manager.meta_route.licence is not None, timeout=10_000)
    licence = manager.meta_route.licence
    assert LICENCE_TEXT.strip() in licence.text.toPlainText() and licence.isVisible()
    qtbot.waitUntil(lambda: "converted and verified" in manager.message.text(), timeout=10_000)
    assert "Llama 2 7B Chat (Meta, F16)" in [m.name for m in installed.list_installed()]
    assert meta_cdn.signature not in manager.message.text()


def test_a_job_whose_link_expired_asks_for_a_new_one(manager: Any, qtbot: Any,
                                                    meta_cdn: MetaCDN) -> None:
    dialog = open_dialog(manager, qtbot)
    choose(dialog, "Llama 2 13B Chat")
    link = meta_cdn.new_link()
    meta_cdn.expired = True
    dialog.field.setText(link)
    dialog.download_button.click()
    qtbot.waitUntil(lambda: dialog.isVisible(), timeout=30_000)  # reopened for a new link
    assert "download links last 24 hours; request a new one at" in dialog.status.text()
    assert dialog.chosen() is not None and dialog.chosen().model_id == "llama-2-13b-chat"
    dialog.field.setText(meta_cdn.new_link())
    dialog.quant.setCurrentText("F16")
    choose(dialog, "Llama 2 13B Chat")
    dialog.download_button.click()
    jobs = manager.conversions.jobs
    qtbot.waitUntil(lambda: any(s.state is ConvertState.DONE for s in jobs.snapshots()),
                    timeout=120_000)
