"""The window's Local API server: Settings page, key in the keyring, serving beside the chat."""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any

import httpx2
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton

from app import settings as app_settings
from app.server import keys
from app.settings import AppSettings
from app.store import Store
from tests.server.conftest import RecordingEngine
from tests.ui.conftest import wait_idle

STARTER = "Starter (SmolLM2 135M)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serving_settings(**changes: Any) -> int:
    """Save settings that turn the window's API server on; returns its port."""
    port = free_port()
    settings = AppSettings(api_server=True, api_port=port)
    for name, value in changes.items():
        setattr(settings, name, value)
    app_settings.save(settings)
    return port


def test_the_window_serves_while_a_chat_streams_in_it(qtbot: Any, make_window: Any) -> None:
    port = serving_settings()
    engine = RecordingEngine([f"w{i} " for i in range(30)], delay=0.03)
    window = make_window(engine)
    qtbot.waitUntil(lambda: window.api.running, timeout=10_000)
    assert window.api.label.text() == f"API on :{port}" and not window.api.label.isHidden()
    url = f"http://127.0.0.1:{port}/v1"
    results: dict[str, Any] = {}

    def client() -> None:
        listed = httpx2.get(url + "/models", timeout=10)
        results["models_at"] = time.monotonic()
        results["models"] = [m["id"] for m in listed.json()["data"]]
        answer = httpx2.post(url + "/chat/completions", timeout=30, json={
            "model": STARTER, "messages": [{"role": "user", "content": "From the API"}]})
        results["answer"] = answer.json()

    window.composer.set_text("From the window")
    qtbot.keyClick(window.composer.edit, Qt.Key.Key_Return)
    qtbot.waitUntil(engine.running.is_set, timeout=10_000)
    thread = threading.Thread(target=client)
    thread.start()
    qtbot.waitUntil(lambda: "answer" in results, timeout=30_000)  # the event loop kept running
    thread.join(5)
    wait_idle(qtbot, window)
    assert results["models"][0] == STARTER
    assert results["answer"]["choices"][0]["message"]["content"] == "".join(
        f"w{i} " for i in range(30))
    (_, window_end), (api_start, _) = sorted(engine.spans)
    assert results["models_at"] < window_end  # the list did not wait for the window's reply
    assert window_end <= api_start  # the API's reply queued behind the window's, never beside
    asked = [m.content for request in engine.requests for m in request]
    assert asked == ["From the window", "From the API"]
    with Store.open(window.db_path) as store:  # not saved unless turned on
        assert len(store.list_conversations()) == 1


def test_closing_the_window_stops_the_server(qtbot: Any, make_window: Any) -> None:
    port = serving_settings()
    window = make_window(RecordingEngine())
    qtbot.waitUntil(lambda: window.api.running, timeout=10_000)
    assert httpx2.get(f"http://127.0.0.1:{port}/health", timeout=10).status_code == 200
    window.close()
    with pytest.raises(httpx2.ConnectError):
        httpx2.get(f"http://127.0.0.1:{port}/health", timeout=5)


def test_saved_api_chats_appear_in_the_sidebar(qtbot: Any, make_window: Any) -> None:
    port = serving_settings(api_save_history=True)
    window = make_window(RecordingEngine(["Saved."]))
    qtbot.waitUntil(lambda: window.api.running, timeout=10_000)
    assert window.sidebar.conversation_items() == []
    answer = httpx2.post(f"http://127.0.0.1:{port}/v1/chat/completions", timeout=30, json={
        "messages": [{"role": "user", "content": "Keep me"}]})
    assert answer.status_code == 200
    qtbot.waitUntil(lambda: len(window.sidebar.conversation_items()) == 1, timeout=10_000)


def test_a_busy_port_is_a_banner_not_a_crash(qtbot: Any, make_window: Any) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        app_settings.save(AppSettings(api_server=True, api_port=port))
        window = make_window(RecordingEngine())
        busy = f"Port {port} is already in use"
        qtbot.waitUntil(lambda: any(busy in t for t in window.banners.texts()), timeout=10_000)
    assert window.api.label.isHidden() and not window.api.running


def test_settings_page_keeps_the_key_in_the_keyring(qtbot: Any, in_memory_keyring: Any) -> None:
    from app.engine.types import Sampling
    from app.ui.settings_dialog import SettingsDialog

    settings = AppSettings()
    dialog = SettingsDialog("", Sampling(), settings)
    qtbot.add_widget(dialog)
    page = dialog.api_page
    page.enabled.setChecked(True)
    page.lan.setChecked(True)
    dialog.accept()  # LAN without a key: refused, the dialog stays open with the reason
    assert "needs an API key" in dialog.error.text()
    assert dialog.result() != SettingsDialog.DialogCode.Accepted
    page.origins.setText("http://localhost:3000, https://app.example")
    [generate] = [b for b in page.findChildren(QPushButton) if b.text() == "Generate"]
    qtbot.mouseClick(generate, Qt.MouseButton.LeftButton)
    assert len(page.key.text()) > 40
    dialog.accept()
    assert dialog.result() == SettingsDialog.DialogCode.Accepted
    dialog.apply_app_settings()
    assert settings.api_server and settings.api_lan
    assert settings.api_origins == ["http://localhost:3000", "https://app.example"]
    stored = in_memory_keyring.store[("llama-desk", keys.KEY_NAME)]
    assert stored == page.key.text()
    app_settings.save(settings)
    assert stored not in app_settings.settings_path().read_text()  # never in a file
    assert json.loads(app_settings.settings_path().read_text())["api_port"] == 8765
    again = SettingsDialog("", Sampling(), settings)
    qtbot.add_widget(again)
    assert again.api_page.key.text() == stored  # read back from the keyring
    again.api_page.key.clear()
    again.apply_app_settings()
    assert keys.get_key() is None


def test_without_a_keyring_the_key_lasts_the_session() -> None:
    import keyring
    from keyring.backends import fail

    keyring.set_keyring(fail.Keyring())
    try:
        assert keys.set_key("session-only-key-123") is False
        assert keys.get_key() == "session-only-key-123"
        keys.clear_key()
        assert keys.get_key() is None
    finally:
        keys.clear_key()
