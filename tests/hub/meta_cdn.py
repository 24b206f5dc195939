"""A loopback emulator of Meta's download CDN: CloudFront-style signed URLs over download.sh's paths.

Every request must carry the link's signed query string (Policy, Signature, Key-Pair-Id); a
wrong or missing one, or any request once the test marks the link expired, is answered 403,
like CloudFront. Files are served with Range, ETag and Content-Range; a model folder outside
``covered`` answers 403; ``corrupt`` serves damaged bytes; ``throttle`` slows the bodies down
so a test can stop a download mid-shard.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from tests.hub.hub_server import FakeFile, FakeHub, _Handler

REPO = "meta"  # the one FakeHub repo the CDN's files live in
LICENCE_TEXT = "LLAMA 2 COMMUNITY LICENSE AGREEMENT\n(the test copy of Meta's licence)\n"
POLICY_TEXT = "Llama 2 Acceptable Use Policy\n(the test copy)\n"


def cloudfront_policy(resource: str, expires: float) -> str:
    """A custom policy as CloudFront puts it in a URL: base64 with - _ ~ for + = /."""
    policy = {"Statement": [{"Resource": resource,
                             "Condition": {"DateLessThan": {"AWS:EpochTime": int(expires)}}}]}
    raw = base64.b64encode(json.dumps(policy, separators=(",", ":")).encode()).decode()
    return raw.replace("+", "-").replace("=", "_").replace("/", "~")


@dataclass
class MetaCDN(FakeHub):
    """State and switches of the CDN (FakeHub supplies drop_after, fail_statuses, requests)."""

    signature: str = ""
    key_pair_id: str = "K3LLAMATESTPAIR"
    policy: str = ""
    expired: bool = False
    covered: set[str] | None = None  # model folders the link covers (None: all)
    corrupt: dict[str, int] = field(default_factory=dict)  # file -> GETs still served damaged
    throttle: float = 0.0  # bytes per second of every body (0: full speed)
    cut: bool = False  # bodies being sent stop at once (the connection closes)
    drops: dict[str, list[int]] = field(default_factory=dict)  # file -> next bodies cut after N
    served: dict[str, int] = field(default_factory=dict)  # body bytes sent per file
    bodies: list[tuple[str, str, int]] = field(default_factory=list)  # (file, Range, bytes sent)
    url: str = ""

    def new_link(self, *, expires_in: float = 24 * 3600, star: str = "*") -> str:
        """Sign a fresh link (earlier ones stop working, as a re-requested link would)."""
        self.signature = secrets.token_urlsafe(32)
        self.policy = cloudfront_policy(f"{self.url}/*", time.time() + expires_in)
        self.expired = self.cut = False
        return (f"{self.url}/{star}?Policy={self.policy}&Signature={self.signature}"
                f"&Key-Pair-Id={self.key_pair_id}&Download-Request-ID=1234567890")

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every piece of the link that must never be written anywhere."""
        return (self.signature, self.policy)

    def serve_tree(self, root: Path) -> None:
        """Every file under ``root`` at its relative path (download.sh's layout)."""
        for path in sorted(root.rglob("*")):
            if path.is_file():
                self.add_path(REPO, path.relative_to(root).as_posix(), path)

    def file(self, name: str) -> FakeFile:
        return self.repos[REPO][name]

    def fetched(self) -> set[str]:
        """Files whose bytes were requested with a valid signature."""
        return {self.name_of(r.path) for r in self.log("GET") if self.signed(r.path)}

    def sent(self, name: str) -> list[tuple[str, int]]:
        """(Range asked for, bytes sent) of each finished body of ``name``."""
        return [(r, n) for f, r, n in self.bodies if f == name]

    def ranges(self, name: str) -> list[str]:
        return [r.headers.get("Range", "") for r in self.log("GET") if self.name_of(r.path) == name]

    @staticmethod
    def name_of(path: str) -> str:
        return unquote(urlsplit(path).path.lstrip("/"))

    def signed(self, path: str) -> bool:
        query = parse_qs(urlsplit(path).query)
        return (query.get("Signature") == [self.signature] and query.get("Policy") == [self.policy]
                and query.get("Key-Pair-Id") == [self.key_pair_id])


class _CDNHandler(_Handler):
    hub: MetaCDN

    def _route(self) -> None:
        self._record()
        cdn = self.hub
        name = cdn.name_of(self.path)
        if not cdn.signed(self.path) or cdn.expired:
            return self._error(403, None, "AccessDenied")
        folder, _, rest = name.partition("/")
        if rest and cdn.covered is not None and folder not in cdn.covered:
            return self._error(403, None, "AccessDenied")
        f = cdn.repos.get(REPO, {}).get(name)
        if f is None:
            return self._error(404, None, "NoSuchKey")
        with cdn.lock:
            failure = cdn.fail_statuses.pop(0) if cdn.fail_statuses else None
            damaged = cdn.corrupt.get(name, 0) > 0 and self.command == "GET"
            if damaged:
                cdn.corrupt[name] -= 1
            cuts = cdn.drops.get(name)
            self._drop = cuts.pop(0) if cuts and self.command == "GET" else None
        if failure:
            return self._error(failure, None, "InternalError")
        self._name, self._damaged = name, damaged
        self._body(f)

    def _write(self, f: FakeFile, start: int, end: int) -> int:
        cdn = self.hub
        data = f.data if f.data is not None else f.path.read_bytes()  # type: ignore[union-attr]
        if self._damaged:
            flipped = bytearray(data)
            flipped[len(flipped) // 2] ^= 0x01
            data = bytes(flipped)
        if self._drop is not None:
            end = min(end, start + self._drop)
        pos = start
        while pos < end or self._drop is not None:
            if cdn.cut or pos >= end:
                self.close_connection = True
                break
            n = min(64 * 1024, end - pos)
            self.wfile.write(data[pos:pos + n])
            pos += n
            with cdn.lock:
                cdn.served[self._name] = cdn.served.get(self._name, 0) + n
            if cdn.throttle:
                time.sleep(n / cdn.throttle)
        with cdn.lock:
            cdn.bodies.append((self._name, self.headers.get("Range", ""), pos - start))
        return pos - start


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that went away mid-body (a killed download) is what some tests do


def write_download_sh_tree(root: Path, tiny_model: Any, tokenizer: Path) -> Path:
    """What download.sh leaves in its folder for 7B-chat and 13B-chat: the shared files at the
    top, then llama-2-7b-chat/ (1 shard) and llama-2-13b-chat/ (2 shards)."""
    from tests.convert import checkpoints as ck

    ck.write_meta(root, tiny_model, tokenizer, name="llama-2-7b-chat", n_shards=1)
    ck.write_meta(root, tiny_model, tokenizer, name="llama-2-13b-chat", n_shards=2)
    (root / "LICENSE").write_text(LICENCE_TEXT)
    (root / "USE_POLICY.md").write_text(POLICY_TEXT)
    return root


@pytest.fixture(scope="session")
def meta_tree(ckpt_root: Path, tiny_model: Any, tokenizer_model: Path) -> Path:
    return write_download_sh_tree(ckpt_root / "download-sh", tiny_model, tokenizer_model)


@pytest.fixture
def meta_cdn(meta_tree: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MetaCDN]:
    """The CDN on a loopback port, serving ``meta_tree``, with a fresh signature."""
    cdn = MetaCDN()
    handler = type("MetaCDNHandler", (_CDNHandler,), {"hub": cdn, "role": "cdn"})
    server = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="fake-meta-cdn",
                              daemon=True)
    thread.start()
    cdn.url = f"http://127.0.0.1:{server.server_address[1]}"
    cdn.serve_tree(meta_tree)
    monkeypatch.setenv("LLAMA_DESK_HUB_RETRY_DELAY", "0.01")
    yield cdn
    server.shutdown()
    server.server_close()
