"""The window's API key: in the OS keyring (service "llama-desk"), or this session only without one."""

from __future__ import annotations

import logging
import secrets
import threading

from app.keychain import delete_secret, get_secret, keyring_available, set_secret
from app.server.config import check_key

log = logging.getLogger(__name__)
KEY_NAME = "api-server-key"

_lock = threading.Lock()
_session: dict[str, str] = {}  # used only when no keyring backend exists


def new_key() -> str:
    """A fresh random key (32 bytes, URL-safe)."""
    return "ld-" + secrets.token_urlsafe(32)


def get_key() -> str | None:
    """The stored key, or None. Never logged or written to files."""
    with _lock:
        if KEY_NAME in _session:
            return _session[KEY_NAME]
    return get_secret(KEY_NAME)


def set_key(key: str) -> bool:
    """Store ``key`` (checked first); True when it is in the keyring, False: this session only."""
    value = check_key(key)
    if keyring_available():
        set_secret(KEY_NAME, value, what="the API key")
        with _lock:
            _session.pop(KEY_NAME, None)
        return True
    with _lock:
        _session[KEY_NAME] = value
    return False


def clear_key() -> None:
    """Forget the key everywhere."""
    with _lock:
        _session.pop(KEY_NAME, None)
    delete_secret(KEY_NAME, what="the API key")
