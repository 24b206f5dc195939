"""Meta's signed download link (the URL in the e-mail): checked, held in memory only, redacted.

The link is a credential until it expires: CloudFront lets anyone holding it download the
weights. A ``MetaLink`` never prints, logs or pickles its query string; what may be shown is
its host and expiry. Ledgers store ``redacted_for(file)``: scheme, host and path, no query.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import time
from urllib.parse import parse_qs, quote, urlsplit

from app.hub.errors import HubError
from app.netaddr import is_loopback

REQUEST_PAGE = "https://www.llama.com/llama-downloads/"
EXAMPLE = "https://download.llamameta.net/*?Policy=…&Signature=…&Key-Pair-Id=…"
SIGNED = ("Signature", "Key-Pair-Id")  # plus Policy (custom policy) or Expires (canned policy)
_SECRET = re.compile(r"(?i)\b(Policy|Signature|Key-Pair-Id|Expires|Download-Request-ID)"
                     r"=[^&\s\"'<>]*")
_HTTP_LOGGERS = ("httpx2", "httpx")  # they log every request's full URL at INFO


class MetaLinkError(HubError):
    """The pasted text is not a usable Meta download link (the message never repeats it)."""


class LinkExpiredError(HubError):
    """Meta's CDN refuses the link: it expired (24 hours) or was used up."""


class NotCoveredError(HubError):
    """The link works, but not for this model's files."""


def redact(text: str) -> str:
    """``text`` with the value of every signing parameter replaced by ``<redacted>``."""
    return _SECRET.sub(lambda m: f"{m.group(1)}=<redacted>", text)


class RedactFilter(logging.Filter):
    """Rewrites a record's message with ``redact`` before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


_FILTER = RedactFilter()


def guard_http_logs() -> None:
    """Keep signed URLs out of the HTTP client's request log lines (idempotent)."""
    for name in _HTTP_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def _policy_expiry(policy: str) -> float | None:
    """AWS:EpochTime of a CloudFront custom policy (base64 with -, _, ~ for +, =, /)."""
    raw = policy.replace("-", "+").replace("_", "=").replace("~", "/")
    try:
        data = json.loads(base64.b64decode(raw + "=" * (-len(raw) % 4)))
        return float(data["Statement"][0]["Condition"]["DateLessThan"]["AWS:EpochTime"])
    except (binascii.Error, ValueError, KeyError, IndexError, TypeError):
        return None


class MetaLink:
    """A checked signed URL with one ``*`` where download.sh puts each file's path."""

    __slots__ = ("_url", "expires", "host", "origin", "path", "scheme")

    def __init__(self, url: str, scheme: str, host: str, path: str, expires: float | None) -> None:
        self._url = url
        self.scheme, self.host, self.path, self.expires = scheme, host, path, expires
        self.origin = f"{scheme}://" + urlsplit(url).netloc.rpartition("@")[2]

    @classmethod
    def parse(cls, text: str) -> MetaLink:
        """Check pasted text; MetaLinkError says what is wrong without repeating the link."""
        url = text.strip().strip("<>\"'").strip()
        head, sep, query_text = url.partition("?")
        if "*" not in head and "%2A" in head.upper():  # a mail client percent-encoded the star
            cut = head.upper().index("%2A")
            url = head[:cut] + "*" + head[cut + 3:] + sep + query_text
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if not parts.scheme or not host:
            raise MetaLinkError("That is not a link: paste the whole URL from Meta's e-mail "
                                f"(it looks like {EXAMPLE}).")
        if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback(host)):
            raise MetaLinkError(f"The link to {host} is not https: Meta's download links start "
                                "with https:// (plain http is accepted only for this computer).")
        stars = parts.path.count("*")
        if stars != 1:
            what = "has no `*`" if stars == 0 else f"has {stars} `*`"
            raise MetaLinkError(f"The link to {host} {what} where each file's name goes: copy "
                                f"the whole link from Meta's e-mail (it looks like {EXAMPLE}).")
        query = parse_qs(parts.query)
        missing = [k for k in SIGNED if not query.get(k)]
        if not (query.get("Policy") or query.get("Expires")):
            missing.insert(0, "Policy")
        if missing:
            raise MetaLinkError(f"The link to {host} is missing its signature "
                                f"({', '.join(missing)}): it was probably cut off at a line "
                                "break; copy the whole link from Meta's e-mail.")
        expires = _policy_expiry(query["Policy"][0]) if query.get("Policy") else None
        if expires is None and query.get("Expires"):
            try:
                expires = float(query["Expires"][0])
            except ValueError:
                expires = None
        return cls(url, parts.scheme, host, parts.path, expires)

    def url_for(self, name: str) -> str:
        """The signed URL of ``name`` (download.sh's ``${PRESIGNED_URL/'*'/name}``): secret."""
        head, _, tail = self._url.partition("*")
        return head + quote(name, safe="/") + tail

    def redacted_for(self, name: str) -> str:
        """Scheme, host and path of ``name``'s URL without the query: safe to store."""
        return self.origin + self.path.replace("*", quote(name, safe="/"), 1)

    def expired(self, now: float | None = None) -> bool:
        return self.expires is not None and (now or time.time()) >= self.expires

    @property
    def shown(self) -> str:
        """"download.llamameta.net, valid until 2023-07-21 14:02 UTC (23 h left)"."""
        if self.expires is None:
            return f"{self.host} (expiry not stated)"
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(self.expires))
        left = self.expires - time.time()
        if left <= 0:
            return f"{self.host}, expired {when}"
        hours = f"{left / 3600:.0f} h" if left >= 3600 else f"{max(1, round(left / 60))} min"
        return f"{self.host}, valid until {when} ({hours} left)"

    def scrub(self, text: str) -> str:
        """``text`` without the link or any part of its query (for logs of unexpected errors)."""
        query = self._url.partition("?")[2]
        if query:
            text = text.replace(query, "<redacted>")
        return redact(text)

    def __repr__(self) -> str:
        return f"MetaLink({self.shown})"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Meta download link is never pickled (it is a credential)")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MetaLink) and other._url == self._url

    def __hash__(self) -> int:
        return hash(self._url)
