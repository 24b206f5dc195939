"""The model manager on the loopback Hub emulator: catalogue, downloads, gated repos, token, import."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QLineEdit

from app.hub import installed
from app.hub.manager import DownloadManager
from app.settings import AppSettings
from app.ui.model_manager import ModelManager
from app.ui.theme import colors
from tests.hub.fixtures import FAST_RETRY, TOKEN, fake_hub, memory_keyring, tiny_gguf  # noqa: F401
from tests.hub.hub_server import FakeHub

R7 = "TheBloke/Llama-2-7B-Chat-GGUF"
Q4 = "llama-2-7b-chat.Q4_K_M.gguf"


@pytest.fixture(autouse=True)
def _keyring(memory_keyring: Any) -> Any:  # noqa: F811
    return memory_keyring


@pytest.fixture
def manager_dialog(qtbot: Any) -> Any:
    downloads = DownloadManager(token=lambda: None, retry=FAST_RETRY, update_interval=0.0)
    dialog = ModelManager(AppSettings(), manager=downloads)
    qtbot.add_widget(dialog)
    yield dialog
    dialog.shutdown()
    from app.ui.tasks import wait_for_background

    wait_for_background(10_000)


def catalogue_rows(dialog: Any) -> dict[str, list[list[str]]]:
    out: dict[str, list[list[str]]] = {}
    for i in range(dialog.tree.topLevelItemCount()):
        top = dialog.tree.topLevelItem(i)
        out[top.text(0)] = [[top.child(j).text(c) for c in range(4)] for j in range(top.childCount())]
    return out


def test_catalogue_lists_llama2_sizes_with_fit_verdicts(qtbot: Any, manager_dialog: Any) -> None:
    rows = catalogue_rows(manager_dialog)
    assert {"Llama-2 7B chat", "Llama-2 13B chat", "Llama-2 70B chat"} <= set(rows)
    quants = [r[0] for r in rows["Llama-2 7B chat"]]
    assert "Q4_K_M" in quants and "Q8_0" in quants
    qtbot.waitUntil(lambda: catalogue_rows(manager_dialog)["Llama-2 7B chat"][0][2] != "…",
                    timeout=30_000)
    qtbot.waitUntil(lambda: all(r[2] != "…" for rows_ in catalogue_rows(manager_dialog).values()
                                for r in rows_), timeout=30_000)
    verdicts = {r[2] for rows_ in catalogue_rows(manager_dialog).values() for r in rows_}
    # every built-in file (known size class and quantization) gets a real planner verdict
    verdict = re.compile(r"fits on GPU|partial \d+/\d+ on GPU|CPU only \(slow\)|won't fit")
    assert verdicts and all(verdict.fullmatch(v) for v in verdicts), verdicts
    qtbot.waitUntil(lambda: manager_dialog.hardware.text().startswith("This computer: RAM"),
                    timeout=30_000)


def test_download_from_catalogue_installs_model(qtbot: Any, manager_dialog: Any,
                                                fake_hub: FakeHub, tmp_path: Path) -> None:  # noqa: F811
    fake_hub.add(R7, Q4, tiny_gguf(tmp_path / "m.gguf", payload_mib=2))
    top = manager_dialog.tree.topLevelItem(0)
    child = next(top.child(j) for j in range(top.childCount()) if top.child(j).text(0) == "Q4_K_M")
    manager_dialog.tree.setCurrentItem(child)
    with qtbot.waitSignal(manager_dialog.installed_changed, timeout=30_000):
        manager_dialog.download_selected()
    job_id = next(iter(manager_dialog.rows))
    assert manager_dialog.job_state(job_id) == "done"
    assert "downloaded and verified" in manager_dialog.message.text()
    names = [manager_dialog.installed.item(r, 0).text() for r in range(manager_dialog.installed.rowCount())]
    assert "llama-2-7b-chat.Q4_K_M" in names
    assert installed.resolve_model("llama-2-7b-chat.Q4_K_M").repo_id == R7


def test_queued_download_pause_resume_and_cancel(qtbot: Any, manager_dialog: Any,
                                                 fake_hub: FakeHub, tmp_path: Path) -> None:  # noqa: F811
    fake_hub.add(R7, Q4, tiny_gguf(tmp_path / "a.gguf", payload_mib=8))
    fake_hub.add(R7, "llama-2-7b-chat.Q2_K.gguf", tiny_gguf(tmp_path / "b.gguf", payload_mib=1, seed=2))
    fake_hub.add(R7, "llama-2-7b-chat.Q8_0.gguf", tiny_gguf(tmp_path / "c.gguf", payload_mib=1, seed=3))
    first = manager_dialog.start_download(R7, Q4)
    second = manager_dialog.start_download(R7, "llama-2-7b-chat.Q2_K.gguf")
    third = manager_dialog.start_download(R7, "llama-2-7b-chat.Q8_0.gguf")
    manager_dialog.table.selectRow(manager_dialog.rows[second])
    manager_dialog._job_action("pause")
    manager_dialog.table.selectRow(manager_dialog.rows[third])
    manager_dialog._job_action("cancel")
    qtbot.waitUntil(lambda: manager_dialog.job_state(first) == "done", timeout=30_000)
    assert manager_dialog.job_state(second).startswith("paused")
    assert manager_dialog.job_state(third).startswith("cancelled")
    manager_dialog.table.selectRow(manager_dialog.rows[second])
    manager_dialog._job_action("resume")
    qtbot.waitUntil(lambda: manager_dialog.job_state(second) == "done", timeout=30_000)
    bar = manager_dialog.table.cellWidget(manager_dialog.rows[first], 1)
    assert bar.value() == 1000 and "MB of" in bar.format()


def test_gated_repo_shows_actionable_message_with_link(qtbot: Any, manager_dialog: Any,
                                                      fake_hub: FakeHub, tmp_path: Path) -> None:  # noqa: F811
    repo = "meta-llama/Llama-2-7b-chat-gguf"
    fake_hub.add(repo, "model.Q4_K_M.gguf", tiny_gguf(tmp_path / "g.gguf", payload_mib=1))
    fake_hub.gated.add(repo)
    manager_dialog.list_repo(repo)
    qtbot.waitUntil(lambda: "gated" in manager_dialog.message.text(), timeout=30_000)
    text = manager_dialog.message.text()
    assert f'<a href="{fake_hub.hub_url}/{repo}">' in text  # the page to request access on
    assert "token" in text


def test_add_hub_repo_lists_gguf_files(qtbot: Any, manager_dialog: Any, fake_hub: FakeHub,  # noqa: F811
                                       tmp_path: Path) -> None:
    repo = "someone/Tiny-GGUF"
    fake_hub.add(repo, "tiny.Q4_K_M.gguf", tiny_gguf(tmp_path / "t.gguf", payload_mib=1))
    fake_hub.add(repo, "README.md", b"# hi")
    manager_dialog.list_repo(repo)
    qtbot.waitUntil(lambda: getattr(manager_dialog, "_chooser", None) is not None, timeout=30_000)
    chooser = manager_dialog._chooser
    assert chooser.list.count() == 1 and chooser.chosen() == "tiny.Q4_K_M.gguf"
    with qtbot.waitSignal(manager_dialog.installed_changed, timeout=30_000):
        chooser.accept()
    assert installed.resolve_model("tiny.Q4_K_M").repo_id == repo


def test_token_dialog_is_masked_checks_and_saves(qtbot: Any, manager_dialog: Any,
                                                 fake_hub: FakeHub, memory_keyring: Any) -> None:  # noqa: F811
    fake_hub.users[TOKEN] = "alice"
    dialog = manager_dialog.open_token_dialog()
    assert dialog.field.echoMode() == QLineEdit.EchoMode.Password
    dialog.field.setText("hf_wrong_token_value_123")
    dialog.save()
    qtbot.waitUntil(lambda: "rejected" in dialog.status.text(), timeout=30_000)
    dialog.field.setText(TOKEN)
    with qtbot.waitSignal(dialog.saved, timeout=30_000):
        dialog.save()
    assert "alice" in dialog.status.text()
    assert dialog.field.text() == ""
    from app.hub import token_store

    assert token_store.get_token() == TOKEN
    qtbot.waitUntil(lambda: "alice" in dialog.account.text(), timeout=10_000)
    dialog.close()


def test_import_local_gguf_and_remove(qtbot: Any, manager_dialog: Any, tmp_path: Path) -> None:
    path = tmp_path / "local.gguf"
    tiny_gguf(path, payload_mib=1)
    with qtbot.waitSignal(manager_dialog.installed_changed, timeout=30_000):
        manager_dialog.import_file(str(path))
    names = [manager_dialog.installed.item(r, 0).text() for r in range(manager_dialog.installed.rowCount())]
    assert "local" in names
    manager_dialog.installed.selectRow(names.index("local"))
    with qtbot.waitSignal(manager_dialog.installed_changed, timeout=30_000):
        manager_dialog.remove_selected()
    assert path.exists()  # an imported file is left where it is
    names = [manager_dialog.installed.item(r, 0).text() for r in range(manager_dialog.installed.rowCount())]
    assert "local" not in names


def test_import_of_a_corrupt_file_is_a_message(qtbot: Any, manager_dialog: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf at all")
    manager_dialog.import_file(str(bad))
    qtbot.waitUntil(lambda: "bad.gguf" in manager_dialog.message.text()
                    and f"color:{colors().danger}" in manager_dialog.message.text(),
                    timeout=30_000)


def test_reopened_dialog_follows_a_new_context_size(qtbot: Any, manager_dialog: Any) -> None:
    qtbot.waitUntil(lambda: catalogue_rows(manager_dialog)["Llama-2 70B chat"][0][2] != "…",
                    timeout=30_000)
    manager_dialog.hide()
    manager_dialog.settings.context_size = 1_000_000  # a 70B KV cache this long fits nowhere here
    manager_dialog.show()
    assert manager_dialog.tree.headerItem().text(2) == "Fit at 1,000,000 tokens"
    qtbot.waitUntil(lambda: catalogue_rows(manager_dialog)["Llama-2 70B chat"][0][2] == "won't fit",
                    timeout=30_000)


# -- fits its screen (review 6) ----------------------------------------------------------------
@pytest.mark.parametrize("point_size", [AppSettings().font_size, 15])
def test_the_dialog_fits_its_screen_at_any_font_size(qtbot: Any, qapp: Any,
                                                     point_size: int) -> None:
    from PySide6.QtWidgets import QWidget

    from app.ui.theme import apply_theme

    apply_theme(qapp, point_size)  # the window's font size and style sheet
    parent = QWidget()
    qtbot.add_widget(parent)
    downloads = DownloadManager(token=lambda: None, retry=FAST_RETRY, update_interval=0.0)
    dialog = ModelManager(AppSettings(), parent, manager=downloads)
    try:
        assert dialog.minimumSizeHint().width() < 1000
        dialog.show()
        qtbot.waitExposed(dialog)
        room = dialog.screen().availableGeometry().size()
        assert dialog.width() <= room.width() and dialog.height() <= room.height()
        labels = [a.text() for a in dialog.add_menu.actions()]
        assert labels == ["Add Hub repo…", "Import local .gguf…", "Convert checkpoint folder…",
                          "Download from Meta (link from e-mail)…"]
    finally:
        dialog.hide()
        dialog.shutdown()
        from app.ui.tasks import wait_for_background

        wait_for_background(10_000)


def test_the_dialog_never_opens_larger_than_the_screen(qtbot: Any, manager_dialog: Any) -> None:
    from app.ui.sizing import resize_within_screen

    room = manager_dialog.screen().availableGeometry().size()
    resize_within_screen(manager_dialog, room.width() + 500, room.height() + 500)
    assert manager_dialog.width() <= room.width()
    assert manager_dialog.height() <= room.height()


# -- the Downloads tab's empty state and buttons (review 14) -----------------------------------
def _enabled(dialog: Any) -> dict[str, bool]:
    return {a: b.isEnabled() for a, b in dialog.downloads_tab.buttons.items()}


def test_downloads_tab_empty_state_and_buttons_that_follow_the_row(
        qtbot: Any, manager_dialog: Any, fake_hub: FakeHub, tmp_path: Path) -> None:  # noqa: F811
    from app.ui.downloads_tab import EMPTY_TEXT

    tab = manager_dialog.downloads_tab
    manager_dialog.show()
    manager_dialog.tabs.setCurrentIndex(2)
    qtbot.waitUntil(tab.empty.isVisible)
    assert tab.empty.text() == EMPTY_TEXT
    assert _enabled(manager_dialog) == {"pause": False, "resume": False, "cancel": False}

    fake_hub.add(R7, Q4, tiny_gguf(tmp_path / "a.gguf", payload_mib=2))
    job = manager_dialog.start_download(R7, Q4)
    assert not tab.empty.isVisible()
    assert _enabled(manager_dialog) == {"pause": False, "resume": False, "cancel": False}
    manager_dialog.table.selectRow(manager_dialog.rows[job])
    assert _enabled(manager_dialog) == {"pause": True, "resume": False, "cancel": True}
    manager_dialog._job_action("pause")
    qtbot.waitUntil(lambda: manager_dialog.job_state(job).startswith("paused"), timeout=30_000)
    assert _enabled(manager_dialog) == {"pause": False, "resume": True, "cancel": True}
    tab.buttons["resume"].click()
    qtbot.waitUntil(lambda: manager_dialog.job_state(job) == "done", timeout=30_000)
    assert _enabled(manager_dialog) == {"pause": False, "resume": False, "cancel": False}
    manager_dialog.table.clearSelection()
    assert _enabled(manager_dialog) == {"pause": False, "resume": False, "cancel": False}


# -- the Installed tab (review 14) -------------------------------------------------------------
def test_headers_are_left_aligned_like_their_cells(manager_dialog: Any) -> None:
    from PySide6.QtCore import Qt

    left = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
    for table in (manager_dialog.installed, manager_dialog.table):
        assert table.horizontalHeader().defaultAlignment() == left


def installed_rows(dialog: Any) -> dict[str, tuple[str, bool]]:
    """name -> (Status cell, whether the row is bold)."""
    table = dialog.installed
    return {table.item(r, 0).text(): (table.item(r, 4).text(), table.item(r, 0).font().bold())
            for r in range(table.rowCount())}


def test_the_loaded_model_is_marked_in_use(manager_dialog: Any, tmp_path: Path) -> None:
    path = tmp_path / "local.gguf"
    tiny_gguf(path, payload_mib=1)
    installed.import_model(path)
    manager_dialog.refresh_installed()
    rows = installed_rows(manager_dialog)
    assert rows["local"] == ("", False) and len(rows) >= 2
    manager_dialog.set_in_use(str(path))
    rows = installed_rows(manager_dialog)
    assert rows.pop("local") == ("● in use", True)
    assert all(row == ("", False) for row in rows.values())
    manager_dialog.refresh_installed()  # a refresh keeps the mark
    assert installed_rows(manager_dialog)["local"] == ("● in use", True)
    manager_dialog.set_in_use(None)
    assert installed_rows(manager_dialog)["local"] == ("", False)


def test_the_window_tells_the_manager_which_model_is_in_use(qtbot: Any, make_window: Any,
                                                            tmp_path: Path) -> None:
    from tests.ui.fakes import FakeEngine

    paths = {}
    for name in ("first", "second"):
        paths[name] = tmp_path / f"{name}.gguf"
        tiny_gguf(paths[name], payload_mib=0.2, seed=len(name))
        installed.import_model(paths[name])
    window = make_window(FakeEngine())
    window.open_model_manager()
    manager = window._manager
    for name in ("first", "second"):
        with qtbot.waitSignal(window.model_ready, timeout=10_000):
            window.load_model(str(paths[name].resolve()))
        marked = {n for n, (status, bold) in installed_rows(manager).items() if status or bold}
        assert marked == {name}
        assert installed_rows(manager)[name] == ("● in use", True)
    with qtbot.waitSignal(window.model_failed, timeout=10_000):
        window.load_model("/nowhere/missing.gguf")  # the model before stays loaded
    assert installed_rows(manager)["second"] == ("● in use", True)
