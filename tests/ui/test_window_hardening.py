"""The window against hostile data and a failing store: plain-text labels, banners, no crash."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt

from app import paths, settings
from app.hub import installed
from app.store import Store
from app.store.base import marker_path
from app.ui.plain import plain_label, plain_tip
from tests.store.damage import fill

HTML_NAME = "<b>Bold</b> <img src='http://example.invalid/x.png'> &amp;"


def test_model_names_in_the_status_bar_are_plain_text(
    qtbot: Any, make_window: Any, fake_engine: Any, tiny_llama2: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "model.gguf"
    copy.write_bytes(tiny_llama2.read_bytes())
    installed.import_model(copy, HTML_NAME)
    window = make_window(fake_engine)
    assert window.state_label.textFormat() == Qt.TextFormat.PlainText
    assert HTML_NAME in window.state_label.text()
    for label in (window.meter, window.backend_label):
        assert label.textFormat() == Qt.TextFormat.PlainText


def test_plain_helpers_never_interpret_html(qtbot: Any) -> None:
    label = plain_label(HTML_NAME)
    qtbot.add_widget(label)
    assert label.textFormat() == Qt.TextFormat.PlainText and label.text() == HTML_NAME
    tip = plain_tip("a <b>b</b> & c")
    assert "<b>" not in tip and "&lt;b&gt;" in tip and tip.startswith("<p")


def test_a_damaged_settings_file_opens_with_defaults_and_one_banner(
    qtbot: Any, make_window: Any, fake_engine: Any
) -> None:
    settings.settings_path().write_text('{"model": 5}', encoding="utf-8")
    window = make_window(fake_engine)
    [text] = [t for t in window.banners.texts() if "settings file was damaged" in t]
    assert "settings.json.bad-" in text
    assert window.settings.context_size == settings.AppSettings().context_size


def test_a_damaged_database_opens_with_a_banner(qtbot: Any, make_window: Any,
                                                fake_engine: Any) -> None:
    fill(paths.database_path(), conversations=2, turns=1)
    marker_path(paths.database_path()).write_text("damage seen\n")
    window = make_window(fake_engine)
    assert any("is damaged" in t and "Repair" in t for t in window.banners.texts())


def test_the_window_repairs_a_damaged_database(qtbot: Any, make_window: Any, fake_engine: Any,
                                               monkeypatch: Any) -> None:
    """Repair… in the window: both Stores closed, the salvage run, the fresh file reopened."""
    from PySide6.QtWidgets import QMessageBox

    from tests.store.damage import damage_page

    db = paths.database_path()
    fill(db, conversations=40, turns=3)
    damage_page(db)
    marker_path(db).write_text("damage seen\n")
    window = make_window(fake_engine)  # a damaged page under the sidebar's previews: it opens
    assert len(window.sidebar.conversation_items()) == 40
    monkeypatch.setattr(QMessageBox, "question",
                        staticmethod(lambda *a, **k: QMessageBox.StandardButton.Yes))
    window.repair_database()
    qtbot.waitUntil(lambda: any(t.startswith("Saved ") for t in window.banners.texts()),
                    timeout=30_000)
    [summary] = [t for t in window.banners.texts() if t.startswith("Saved ")]
    assert "fresh database" in summary and "damaged file is kept" in summary
    assert not window.store.damaged and window.store.integrity_check() == "ok"
    assert 30 <= len(window.sidebar.conversation_items()) <= 40
    assert list(db.parent.glob(db.name + ".damaged-*"))
    from tests.ui.test_window import send

    send(qtbot, window, "Still writing after the repair")  # the model thread's Store reopened
    assert window.branch[-1].state == "complete"


def test_a_read_only_database_opens_with_a_banner(qtbot: Any, make_window: Any, fake_engine: Any,
                                                  monkeypatch: Any) -> None:
    fill(paths.database_path(), conversations=2, turns=1)
    real_open = Store.open.__func__  # type: ignore[attr-defined]

    def read_only(cls: type[Store], path: Any = None, *, read_only: bool = False) -> Store:
        return real_open(cls, path, read_only=True)

    monkeypatch.setattr(Store, "open", classmethod(read_only))
    window = make_window(fake_engine, wait_ready=False)
    assert window.store.read_only
    assert any("read-only" in t for t in window.banners.texts())
    assert len(window.sidebar.conversation_items()) == 2  # reading works
