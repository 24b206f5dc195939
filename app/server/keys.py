"""The window's API key: in the OS keyring (service "llama-desk"), or this session only without one."""

from __future__ import annotations

import logging
import secrets
import threading

from app.errors import UserError
from app.keychain import SERVICE, keyring_available
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
    if not keyring_available():
        return None
    import keyring

    try:
        return keyring.get_password(SERVICE, KEY_NAME) or None
    except Exception as err:
        log.warning("keyring read failed: %s", type(err).__name__)
        return None


def set_key(key: str) -> bool:
    """Store ``key`` (checked first); True when it is in the keyring, False: this session only."""
    value = check_key(key)
    if keyring_available():
        import keyring

        try:
            keyring.set_password(SERVICE, KEY_NAME, value)
        except Exception as err:
            raise UserError(f"The OS keyring refused to store the API key "
                            f"({type(err).__name__}); unlock the keyring and try again.") from None
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
    if keyring_available():
        import keyring

        try:
            if keyring.get_password(SERVICE, KEY_NAME) is not None:
                keyring.delete_password(SERVICE, KEY_NAME)
        except Exception as err:
            raise UserError(f"The OS keyring refused to remove the API key "
                            f"({type(err).__name__}).") from None
