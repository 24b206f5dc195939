"""One file from Meta's CDN through a signed link: resumable, md5-checked, the link never stored.

It is the Hub downloader (``download._Fetch``: Range GETs, a kept ``.part``, retries with
backoff, pause/cancel) with three differences: the file's size and ETag come from the first
GET itself (no HEAD: every request counts against the link's download limit), the ledger
``<file>.part.json`` holds the redacted URL (scheme, host, path), and the digest is md5, the
one Meta's ``checklist.chk`` lists.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from app import __version__
from app.hub import client
from app.hub.client import RemoteFile, RetryPolicy
from app.hub.download import (
    CHUNK,
    Control,
    NoticeFn,
    ProgressFn,
    _Fetch,
    _load_meta,
    discard_partial,
    new_http_client,
)
from app.hub.errors import HubError, HubUnreachableError, ServerError
from app.hub.meta_link import MetaLink, guard_http_logs


class ForbiddenError(HubError):
    """The CDN answered 403 (expired, used up, or not covering this file): the caller tells which."""

    def __init__(self, name: str, status: int) -> None:
        super().__init__(f"Meta's CDN refused {name} (HTTP {status}).")
        self.name, self.status = name, status


class Md5MismatchError(HubError):
    """The downloaded bytes differ from checklist.chk; the file was deleted."""

    def __init__(self, name: str, got: str, want: str) -> None:
        super().__init__(f"{name} does not match its checklist (md5 {got[:12]}… instead of "
                         f"{want[:12]}…).")
        self.name, self.got, self.want = name, got, want


def _md5() -> Any:
    return hashlib.md5(usedforsecurity=False)


class _SignedFetch(_Fetch):
    def __init__(self, link: MetaLink, name: str, dest: Path, *, md5: str | None,
                 control: Control, on_progress: ProgressFn | None, on_notice: NoticeFn | None,
                 retry: RetryPolicy, http: Any, chunk_size: int) -> None:
        remote = RemoteFile("meta", name, "", link.redacted_for(name), 0, None, None, None)
        super().__init__(remote, dest, None, control, on_progress, on_notice, retry, http,
                         chunk_size)
        self.link, self.name, self.md5 = link, name, md5
        self.hasher = _md5()
        self.pending: Any = None  # the first response, opened in prepare()

    def restart(self, why: str | None) -> None:
        super().restart(why)
        self.hasher = _md5()

    def _headers(self, url: str) -> dict[str, str]:
        headers = {"User-Agent": f"llama-desk/{__version__}", "Accept-Encoding": "identity"}
        if self.done:
            headers["Range"] = f"bytes={self.done}-"
        return headers

    def _get(self) -> Any:
        """GET from ``self.done`` (following redirects); 2xx or 416 come back, the rest raise."""
        response = self._follow(self.link.url_for(self.name))
        status = response.status_code
        if status < 400 or status == 416:
            return response
        response.close()
        if status in (401, 403, 404, 410):
            raise ForbiddenError(self.name, status)
        what = f"{self.link.host} answered HTTP {status} for {self.name}"
        if status == 429 or status >= 500:
            raise ServerError(f"{what}; try again later.")
        raise HubError(f"{what}.")

    def _open(self) -> Any:
        response, self.pending = self.pending, None
        return response if response is not None else self._get()

    def map_error(self, raw: BaseException) -> HubError:
        import httpx2 as httpx

        if isinstance(raw, httpx.TimeoutException):
            return ServerError(f"{self.link.host} timed out while sending {self.name}.")
        if isinstance(raw, httpx.ConnectError | ConnectionRefusedError):
            return HubUnreachableError(f"Cannot reach {self.link.host}: check your internet "
                                       "connection (or proxy) and try again.")
        if isinstance(raw, httpx.TransportError | ConnectionError):
            return ServerError(f"The connection to {self.link.host} dropped while downloading "
                               f"{self.name}.")
        return HubError(f"Downloading {self.name} from {self.link.host} failed "
                        f"({type(raw).__name__}).")

    def prepare(self) -> None:
        """Open the first GET (a Range one when a partial file is kept), learn the size and
        ETag from it, then resume or start over as the Hub downloader does."""
        old = _load_meta(self.meta_path) if self.meta_path.exists() else None
        have = self.part.stat().st_size if self.part.exists() else 0
        self.done = have if old is not None else 0
        response = client.with_retries(self._get, self.retry, what=f"GET {self.name}",
                                       on_retry=self.notice, map_err=self.map_error)
        status = response.status_code
        etag = (response.headers.get("ETag") or "").strip('"') or None
        total = response.headers.get("Content-Range", "").rpartition("/")[2]
        if status == 416 and old is not None and total == str(have):
            size, etag = have, old.etag  # the partial file is complete already
        elif status in (206, 416):
            size = int(total) if total.isdigit() else -1
        else:
            size = int(response.headers.get("Content-Length") or -1)
        if size < 0:
            response.close()
            raise ServerError(f"{self.link.host} did not say how large {self.name} is; "
                              "try again later.")
        if status == 200 and self.done:
            self.restart(f"{self.link.host} ignored the resume request for {self.name}; "
                         "downloading it from the start.")
        self.remote = replace(self.remote, size=size, etag=etag)
        offset = self.done
        super().prepare()
        if status == 416 or (status == 206 and self.done != offset):
            response.close()  # nothing to read, or a stale partial was dropped: GET again
        else:
            self.pending = response

    def finish(self) -> Path:
        got = self.hasher.hexdigest()
        if self.md5 and got != self.md5:
            for path in (self.part, self.meta_path):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            raise Md5MismatchError(self.name, got, self.md5)
        os.replace(self.part, self.dest)
        with contextlib.suppress(FileNotFoundError):
            self.meta_path.unlink()
        return self.dest


def download_signed(link: MetaLink, name: str, dest: Path, *, md5: str | None = None,
                    control: Control | None = None, on_progress: ProgressFn | None = None,
                    on_notice: NoticeFn | None = None, retry: RetryPolicy | None = None,
                    http: Any = None, chunk_size: int = CHUNK) -> Path:
    """Download ``name`` (a path under the link's ``*``) to ``dest``, resuming a kept partial.

    ``md5`` is checked over the whole file (Md5MismatchError deletes it). Raises
    DownloadStopped when paused (partial kept) or cancelled (partial removed), ForbiddenError
    on 401/403/404/410, and HubError subclasses for the rest.
    """
    guard_http_logs()
    control = control or Control()
    own = http is None
    http = http or new_http_client()
    fetch = _SignedFetch(link, name, Path(dest), md5=md5, control=control,
                         on_progress=on_progress, on_notice=on_notice,
                         retry=retry or RetryPolicy.from_env(), http=http, chunk_size=chunk_size)
    try:
        return fetch.run()
    except BaseException as err:
        if fetch.pending is not None:
            fetch.pending.close()
        if getattr(err, "reason", None) == "cancelled":
            discard_partial(Path(dest))
        raise
    finally:
        if own:
            http.close()
