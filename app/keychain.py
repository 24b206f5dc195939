"""Secrets in the OS keyring (service "llama-desk"): never in files, logs, settings or messages."""

from __future__ import annotations

import logging

from app.errors import UserError

log = logging.getLogger(__name__)

SERVICE = "llama-desk"


class KeychainError(UserError):
    """The OS keyring refused to store or remove a secret."""


def keyring_available() -> bool:
    """Whether a real keyring backend is configured (not keyring's "fail" or an empty chainer)."""
    try:
        import keyring
        from keyring.backends import chainer, fail, null

        backend = keyring.get_keyring()
        if isinstance(backend, fail.Keyring | null.Keyring):
            return False
        return not (isinstance(backend, chainer.ChainerBackend) and not backend.backends)
    except Exception as err:  # a broken keyring install is "no keyring"
        log.warning("keyring unavailable: %s", type(err).__name__)
        return False


def get_secret(key: str) -> str | None:
    """The secret stored under ``key``, or None (no keyring, nothing stored, or a read failure)."""
    if not keyring_available():
        return None
    import keyring

    try:
        return keyring.get_password(SERVICE, key) or None
    except Exception as err:
        log.warning("keyring read failed: %s", type(err).__name__)
        return None


def set_secret(key: str, value: str, *, what: str) -> None:
    """Store ``value`` under ``key``; KeychainError (naming ``what``, never the value) if refused."""
    import keyring

    try:
        keyring.set_password(SERVICE, key, value)
    except Exception as err:
        raise KeychainError(f"The OS keyring refused to store {what} ({type(err).__name__}); "
                            "unlock the keyring and try again.") from None


def delete_secret(key: str, *, what: str) -> bool:
    """Remove the secret under ``key``; True when there was one."""
    if not keyring_available():
        return False
    import keyring

    try:
        if keyring.get_password(SERVICE, key) is None:
            return False
        keyring.delete_password(SERVICE, key)
    except Exception as err:
        raise KeychainError(f"The OS keyring refused to remove {what} "
                            f"({type(err).__name__}).") from None
    return True
