"""The Hugging Face token: OS keyring (service "llama-desk"), or this session only without one."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from app.hub.errors import KeyringError, TokenRejectedError
from app.keychain import SERVICE
from app.keychain import keyring_available as keyring_available

log = logging.getLogger(__name__)

TOKEN_KEY = "huggingface-token"
ACCOUNT_KEY = "huggingface-account"
NO_KEYRING = (
    "No OS keyring is available (for example on a headless Linux without Secret Service), so "
    "the token is kept for this session only and must be entered again next time."
)

_lock = threading.Lock()
_session: dict[str, str] = {}  # used only when no keyring backend exists


def _kr_get(key: str) -> str | None:
    import keyring

    try:
        return keyring.get_password(SERVICE, key)
    except Exception as err:
        log.warning("keyring read failed: %s", type(err).__name__)
        return None


def get_token() -> str | None:
    """The stored token, or None. Never logged, never put in files, URLs or child environments."""
    with _lock:
        if TOKEN_KEY in _session:
            return _session[TOKEN_KEY]
    if not keyring_available():
        return None
    return _kr_get(TOKEN_KEY) or None


def account_name() -> str | None:
    """The account name saved with the token (no network)."""
    with _lock:
        if ACCOUNT_KEY in _session:
            return _session[ACCOUNT_KEY]
    return _kr_get(ACCOUNT_KEY) if keyring_available() else None


@dataclass(frozen=True)
class TokenSaved:
    """Outcome of `set_token`."""

    account: str
    persisted: bool  # False: no keyring, kept for this session only

    @property
    def message(self) -> str:
        where = "in the OS keyring" if self.persisted else "for this session only"
        text = f"Token for Hugging Face account {self.account!r} saved {where}."
        return text if self.persisted else f"{text} {NO_KEYRING}"


def clean(token: str) -> str:
    """Strip whitespace; refuse an empty or obviously malformed token (without echoing it)."""
    value = token.strip()
    if not value:
        raise TokenRejectedError("The token is empty: paste a token from huggingface.co/settings/tokens.")
    if any(ch.isspace() for ch in value) or len(value) < 8:
        raise TokenRejectedError(
            "That does not look like a Hugging Face token (it should be one word, usually "
            "starting with hf_): copy it again from huggingface.co/settings/tokens."
        )
    return value


def set_token(token: str, *, check: bool = True) -> TokenSaved:
    """Check ``token`` with the Hub's whoami, then store it (keyring, else this session)."""
    from app.hub import client

    value = clean(token)
    account = client.whoami(value) if check else "?"
    if keyring_available():
        import keyring

        try:
            keyring.set_password(SERVICE, TOKEN_KEY, value)
            keyring.set_password(SERVICE, ACCOUNT_KEY, account)
        except Exception as err:
            raise KeyringError(
                f"The OS keyring refused to store the token ({type(err).__name__}); unlock the "
                "keyring and try again."
            ) from None
        with _lock:
            _session.clear()
        return TokenSaved(account, True)
    with _lock:
        _session[TOKEN_KEY] = value
        _session[ACCOUNT_KEY] = account
    return TokenSaved(account, False)


def clear_token() -> bool:
    """Forget the token everywhere; True when there was one."""
    had = False
    with _lock:
        had = TOKEN_KEY in _session
        _session.clear()
    if keyring_available():
        import keyring

        for key in (TOKEN_KEY, ACCOUNT_KEY):
            try:
                if keyring.get_password(SERVICE, key) is not None:
                    keyring.delete_password(SERVICE, key)
                    had = had or key == TOKEN_KEY
            except Exception as err:
                raise KeyringError(
                    f"The OS keyring refused to remove the token ({type(err).__name__})."
                ) from None
    return had
