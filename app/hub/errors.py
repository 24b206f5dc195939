"""Hub failures told apart, each a UserError whose message says what to do next."""

from __future__ import annotations

from app.errors import UserError


class HubError(UserError):
    """Something went wrong talking to the Hub or with a download."""


class TokenRequiredError(HubError):
    """A gated or private repo was asked for without a token."""


class TokenRejectedError(HubError):
    """The Hub said the token is invalid or revoked."""


class AccessNotGrantedError(HubError):
    """The token is fine but its account has not been granted access to a gated repo yet."""


class NotFoundError(HubError):
    """No such repo, revision or file."""


class HubUnreachableError(HubError):
    """No connection to the Hub, or offline mode is on."""


class ServerError(HubError):
    """The Hub kept answering 5xx or timing out after the automatic retries."""


class ChecksumMismatchError(HubError):
    """A downloaded file's sha256 differs from the Hub's LFS hash; the file was quarantined."""


class DiskSpaceError(HubError):
    """Not enough free disk space to start a download."""


class KeyringError(HubError):
    """The OS keyring refused to store or remove the token."""


class DownloadStopped(Exception):
    """Raised inside a download when it was paused or cancelled; ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
