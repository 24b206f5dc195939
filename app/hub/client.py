"""Thin layer over huggingface_hub: endpoint, offline mode, file metadata, listings, error mapping."""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlparse

from app.hub.errors import (
    AccessNotGrantedError,
    HubError,
    HubUnreachableError,
    NotFoundError,
    ServerError,
    TokenRejectedError,
    TokenRequiredError,
)

log = logging.getLogger(__name__)

LIBRARY = "llama-desk"
METADATA_TIMEOUT = 15.0
SHA256_RE = re.compile(r"[0-9a-f]{64}")
TOKENS_PAGE = "https://huggingface.co/settings/tokens"
T = TypeVar("T")


def endpoint() -> str:
    """The Hub's base URL: $HF_ENDPOINT (tests point it at a loopback emulator) or huggingface.co."""
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of ``url``: the token only ever goes to the endpoint's origin."""
    parsed = urlparse(url)
    port = parsed.port or {"http": 80, "https": 443}.get(parsed.scheme, 0)
    return parsed.scheme, (parsed.hostname or "").lower(), port


def is_offline() -> bool:
    """Whether HF_HUB_OFFLINE asks for no network at all."""
    from huggingface_hub import constants

    value = os.environ.get("HF_HUB_OFFLINE", "").strip().lower()
    return value in {"1", "true", "yes", "on"} or bool(constants.HF_HUB_OFFLINE and value == "")


def require_online() -> None:
    if is_offline():
        raise HubUnreachableError(
            "Offline mode is on (HF_HUB_OFFLINE): unset it to reach the Hugging Face Hub."
        )


def repo_page(repo_id: str, ep: str | None = None) -> str:
    return f"{ep or endpoint()}/{repo_id}"


@dataclass(frozen=True)
class RetryPolicy:
    """Automatic retries of 5xx answers, timeouts and dropped connections, with backoff."""

    attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)

    @classmethod
    def from_env(cls) -> RetryPolicy:
        """Defaults, or $LLAMA_DESK_HUB_RETRIES attempts and $LLAMA_DESK_HUB_RETRY_DELAY seconds."""
        try:
            attempts = int(os.environ.get("LLAMA_DESK_HUB_RETRIES", "") or cls.attempts)
            base = float(os.environ.get("LLAMA_DESK_HUB_RETRY_DELAY", "") or cls.base_delay)
        except ValueError:
            return cls()
        return cls(attempts=max(1, attempts), base_delay=base, max_delay=max(base, 30.0 * base))

    def delay(self, attempt: int) -> float:
        return min(self.max_delay, self.base_delay * (2.0 ** max(0, attempt - 1)))


def is_retryable(err: BaseException) -> bool:
    if isinstance(err, ServerError):
        return True
    return isinstance(err, HubUnreachableError) and not is_offline()


def with_retries(
    fn: Callable[[], T], policy: RetryPolicy, *, what: str,
    on_retry: Callable[[str], None] | None = None,
    map_err: Callable[[BaseException], HubError] | None = None,
) -> T:
    """Call ``fn``; retry 5xx answers, timeouts and drops with exponential backoff, then give up."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except Exception as raw:
            err = raw if isinstance(raw, HubError) or map_err is None else map_err(raw)
            if not isinstance(err, HubError):
                raise
            # A Hub that cannot be reached at all fails fast here; only the download loop
            # waits out a connection that drops mid-file.
            if not isinstance(err, ServerError) or attempt >= policy.attempts:
                if err is raw:
                    raise
                raise err from raw
            wait = policy.delay(attempt)
            note = f"{what}: {err} Retrying in {wait:.0f} s ({attempt}/{policy.attempts - 1})."
            log.info(note)
            if on_retry:
                on_retry(note)
            policy.sleep(wait)


def map_error(
    err: BaseException, *, repo_id: str, filename: str | None = None, had_token: bool,
    ep: str | None = None,
) -> HubError:
    """Turn a huggingface_hub / httpx error into the HubError that says what to do next.

    Messages never include the token, headers or response bodies.
    """
    import httpx2 as httpx
    from huggingface_hub import errors as hf

    if isinstance(err, HubError):
        return err
    ep = ep or endpoint()
    what = f"{repo_id}/{filename}" if filename else repo_id
    page = repo_page(repo_id, ep)
    if isinstance(err, hf.OfflineModeIsEnabled):
        return HubUnreachableError(
            "Offline mode is on (HF_HUB_OFFLINE): unset it to reach the Hugging Face Hub."
        )
    if isinstance(err, httpx.TimeoutException):
        return ServerError(f"The Hub at {ep} timed out for {what}; try again later.")
    if isinstance(err, httpx.ConnectError | ConnectionRefusedError):
        return HubUnreachableError(
            f"Cannot reach the Hugging Face Hub at {ep}: check your internet connection "
            "(or proxy) and try again."
        )
    if isinstance(err, httpx.TransportError | ConnectionError):
        return ServerError(f"The connection to {ep} dropped while fetching {what}.")
    if isinstance(err, hf.GatedRepoError):
        if had_token:
            return AccessNotGrantedError(
                f"Your Hugging Face account has not been granted access to {repo_id} yet: "
                f"request it on {page} (approval can take a day or two), then try again."
            )
        return TokenRequiredError(
            f"{repo_id} is gated: create a read token at {TOKENS_PAGE}, add it with "
            f"`llama-desk token set` (or the token dialog), and request access on {page}."
        )
    response: Any = getattr(err, "response", None)
    status = getattr(response, "status_code", None)
    server_msg = ""
    if response is not None:
        server_msg = response.headers.get("X-Error-Message", "") or ""
    if status == 401 and (had_token or "invalid credentials" in server_msg.lower()):
        return TokenRejectedError(
            "The Hub rejected your Hugging Face token (invalid or revoked): create a new one at "
            f"{TOKENS_PAGE} and run `llama-desk token set`."
        )
    if isinstance(err, hf.RevisionNotFoundError):
        return NotFoundError(f"Revision not found in {repo_id}: check the branch or commit.")
    if isinstance(err, hf.RepositoryNotFoundError):
        hint = (
            "check the id (owner/name)" if had_token
            else "check the id (owner/name); if it is private or gated, add a token with "
            "`llama-desk token set`"
        )
        return NotFoundError(f"Repository {repo_id} not found on the Hub: {hint}.")
    if isinstance(err, hf.EntryNotFoundError) or status == 404:
        return NotFoundError(
            f"File {filename or '?'} not found in {repo_id}: list its files with "
            f"`llama-desk models files {repo_id}`."
        )
    if status == 403:
        if not had_token:
            return TokenRequiredError(
                f"{repo_id} needs a Hugging Face token: add one with `llama-desk token set`."
            )
        return AccessNotGrantedError(
            f"The Hub refused access to {what} (403): make sure your token has read access and "
            f"your account was granted access on {page}."
        )
    if status is not None and (status == 429 or status >= 500):
        return ServerError(f"The Hub answered HTTP {status} for {what}; try again later.")
    if status is not None:
        return HubError(f"The Hub answered HTTP {status} for {what}.")
    return HubError(f"Hub request for {what} failed ({type(err).__name__}).")


@dataclass(frozen=True)
class RemoteFile:
    """One file on the Hub as its HEAD answer describes it."""

    repo_id: str
    filename: str
    revision: str
    url: str  # the Hub's resolve URL (never carries the token)
    size: int
    sha256: str | None
    etag: str | None
    commit: str | None


def file_metadata(
    repo_id: str, filename: str, *, token: str | None, revision: str = "main",
    retry: RetryPolicy | None = None, on_retry: Callable[[str], None] | None = None,
) -> RemoteFile:
    """HEAD the file on the Hub: size, sha256 (LFS etag), commit; retried on 5xx/timeouts."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    require_online()
    ep = endpoint()
    url = hf_hub_url(repo_id, filename, revision=revision, endpoint=ep)

    def head() -> Any:
        return get_hf_file_metadata(
            url, token=token or False, timeout=METADATA_TIMEOUT, library_name=LIBRARY,
            endpoint=ep, retry_on_errors=False,
        )

    meta = with_retries(
        head, retry or RetryPolicy.from_env(), what=f"HEAD {repo_id}/{filename}", on_retry=on_retry,
        map_err=lambda e: map_error(e, repo_id=repo_id, filename=filename,
                                    had_token=bool(token), ep=ep),
    )
    if meta.size is None:
        raise HubError(f"The Hub did not say how large {repo_id}/{filename} is; try again later.")
    etag = (meta.etag or "").strip('"').lower() or None
    sha = etag if etag and SHA256_RE.fullmatch(etag) else None
    return RemoteFile(repo_id, filename, revision, url, int(meta.size), sha, etag, meta.commit_hash)


@dataclass(frozen=True)
class RepoFileInfo:
    """A file in a repo listing."""

    filename: str
    size: int | None
    sha256: str | None


@dataclass(frozen=True)
class RepoListing:
    """A repo's files with sizes and LFS sha256, from /api/models/<repo>?blobs=true."""

    repo_id: str
    commit: str | None
    gated: bool
    files: tuple[RepoFileInfo, ...]

    def get(self, filename: str) -> RepoFileInfo | None:
        return next((f for f in self.files if f.filename == filename), None)


def repo_listing(
    repo_id: str, *, token: str | None, revision: str | None = None,
    retry: RetryPolicy | None = None,
) -> RepoListing:
    """List a repo's files with sizes and sha256 (one API call, retried on 5xx/timeouts)."""
    from huggingface_hub import HfApi

    require_online()
    ep = endpoint()
    api = HfApi(endpoint=ep, token=False, library_name=LIBRARY)
    info = with_retries(
        lambda: api.model_info(
            repo_id, revision=revision, files_metadata=True, token=token or False,
            timeout=METADATA_TIMEOUT,
        ),
        retry or RetryPolicy.from_env(), what=f"listing {repo_id}",
        map_err=lambda e: map_error(e, repo_id=repo_id, had_token=bool(token), ep=ep),
    )
    files = tuple(
        RepoFileInfo(
            s.rfilename, s.lfs.size if s.lfs else s.size, s.lfs.sha256 if s.lfs else None
        )
        for s in (info.siblings or [])
    )
    return RepoListing(repo_id, info.sha, bool(info.gated), files)


def whoami(token: str, *, retry: RetryPolicy | None = None) -> str:
    """The account name the token belongs to; TokenRejectedError when the Hub refuses it."""
    from huggingface_hub import HfApi

    require_online()
    ep = endpoint()
    api = HfApi(endpoint=ep, token=False, library_name=LIBRARY)
    data = with_retries(
        lambda: api.whoami(token=token), retry or RetryPolicy.from_env(), what="checking token",
        map_err=lambda e: map_error(e, repo_id="whoami", had_token=True, ep=ep),
    )
    return str(data.get("name") or data.get("fullname") or "?")
