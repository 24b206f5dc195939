"""A loopback emulator of the Hugging Face Hub (resolve, API, whoami) with a separate CDN origin."""

from __future__ import annotations

import hashlib
import json
import re
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

COMMIT = "c0ffee" + "0" * 34
RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")
CDN = re.compile(r"^/cdn/(?P<repo>[^/]+/[^/]+)/(?P<file>.+)$")
API = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+?)(?:/revision/(?P<rev>[^/]+))?$")


@dataclass
class FakeFile:
    """A file served by the emulator, from memory or from disk."""

    data: bytes | None = None
    path: Path | None = None
    sha256: str = ""
    advertised_sha256: str | None = None  # set to lie about the hash (corruption tests)

    @property
    def size(self) -> int:
        return len(self.data) if self.data is not None else self.path.stat().st_size  # type: ignore[union-attr]

    @property
    def etag(self) -> str:
        return self.advertised_sha256 or self.sha256


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    server: str  # "hub" or "cdn"


@dataclass
class FakeHub:
    """State and failure switches shared by the hub and CDN servers."""

    repos: dict[str, dict[str, FakeFile]] = field(default_factory=dict)
    gated: set[str] = field(default_factory=set)
    users: dict[str, str] = field(default_factory=dict)  # token -> account name
    granted: dict[str, set[str]] = field(default_factory=dict)  # token -> gated repos
    fail_statuses: list[int] = field(default_factory=list)  # next resolve answers (HEAD or GET)
    get_fail_statuses: list[int] = field(default_factory=list)  # next file GET answers only
    drop_after: list[int] = field(default_factory=list)  # next GET bodies cut after N bytes
    use_cdn: bool = True
    requests: list[Request] = field(default_factory=list)
    body_bytes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    hub_url: str = ""
    cdn_url: str = ""

    def add(self, repo: str, filename: str, data: bytes) -> FakeFile:
        f = FakeFile(data=data, sha256=hashlib.sha256(data).hexdigest())
        self.repos.setdefault(repo, {})[filename] = f
        return f

    def add_path(self, repo: str, filename: str, path: Path) -> FakeFile:
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            while block := fh.read(1 << 22):
                digest.update(block)
        f = FakeFile(path=path, sha256=digest.hexdigest())
        self.repos.setdefault(repo, {})[filename] = f
        return f

    def log(self, method: str) -> list[Request]:
        return [r for r in self.requests if r.method == method]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hub: FakeHub
    role: str

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _record(self) -> None:
        with self.hub.lock:
            self.hub.requests.append(
                Request(self.command, self.path, {k.title(): v for k, v in self.headers.items()}, self.role)
            )

    def _send(self, status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, code: str | None = None, message: str | None = None) -> None:
        headers = {}
        if code:
            headers["X-Error-Code"] = code
        if message:
            headers["X-Error-Message"] = message
        self._send(status, headers, json.dumps({"error": message or code or ""}).encode())

    def _auth(self, repo: str) -> bool:
        """Answer 401/403/404 like the Hub and return False, or True when access is fine."""
        hub = self.hub
        auth = self.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth else None
        if token and token not in hub.users:
            self._error(401, None, "Invalid credentials in Authorization header")
            return False
        if repo not in hub.repos:
            self._error(404 if token else 401, "RepoNotFound", "Repository not found")
            return False
        if repo in hub.gated:
            if not token:
                self._error(401, "GatedRepo", f"Access to model {repo} is restricted.")
                return False
            if repo not in hub.granted.get(token, set()):
                self._error(403, "GatedRepo", f"Access to model {repo} is restricted and you "
                            "are not in the authorized list.")
                return False
        return True

    def do_HEAD(self) -> None:
        self._route()

    def do_GET(self) -> None:
        self._route()

    def _route(self) -> None:
        self._record()
        path = urlparse(self.path).path
        if self.role == "cdn":
            match = CDN.match(path)
            if not match:
                return self._error(404)
            f = self.hub.repos[match["repo"]][unquote(match["file"])]
            return self._body(f)
        if path == "/api/whoami-v2":
            return self._whoami()
        if (match := API.match(path)) is not None:
            return self._api(match["repo"])
        if (match := RESOLVE.match(path)) is not None:
            return self._resolve(match["repo"], unquote(match["file"]))
        self._error(404)

    def _whoami(self) -> None:
        token = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if token not in self.hub.users:
            return self._error(401, None, "Invalid credentials in Authorization header")
        body = json.dumps({"type": "user", "name": self.hub.users[token]}).encode()
        self._send(200, {"Content-Type": "application/json"}, body)

    def _api(self, repo: str) -> None:
        if not self._auth(repo):
            return
        siblings = [
            {"rfilename": name, "size": f.size, "blobId": f.sha256[:40],
             "lfs": {"size": f.size, "sha256": f.etag, "pointerSize": 134}}
            for name, f in sorted(self.hub.repos[repo].items())
        ]
        body = json.dumps({"id": repo, "sha": COMMIT, "gated": "manual" if repo in
                           self.hub.gated else False, "siblings": siblings}).encode()
        self._send(200, {"Content-Type": "application/json"}, body)

    def _resolve(self, repo: str, filename: str) -> None:
        hub = self.hub
        with hub.lock:
            failure = hub.fail_statuses.pop(0) if hub.fail_statuses else None
            if failure is None and self.command == "GET" and hub.get_fail_statuses:
                failure = hub.get_fail_statuses.pop(0)
        if failure:
            return self._error(failure, None, "Internal Error")
        if not self._auth(repo):
            return
        f = hub.repos[repo].get(filename)
        if f is None:
            return self._error(404, "EntryNotFound", f"{filename} does not exist")
        linked = {"X-Repo-Commit": COMMIT, "X-Linked-Etag": f'"{f.etag}"',
                  "X-Linked-Size": str(f.size), "ETag": f'"{f.etag}"'}
        if hub.use_cdn:
            linked["Location"] = f"{hub.cdn_url}/cdn/{repo}/{filename}"
            return self._send(302, linked)
        self._body(f, linked)

    def _body(self, f: FakeFile, extra: dict[str, str] | None = None) -> None:
        hub = self.hub
        size = f.size
        start, status = 0, 200
        rng = self.headers.get("Range")
        if rng and (m := re.fullmatch(r"bytes=(\d+)-", rng.strip())):
            start, status = int(m.group(1)), 206
            if start >= size:
                return self._send(416, {"Content-Range": f"bytes */{size}"})
        self.send_response(status)
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(size - start))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", f'"{f.etag}"')
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        self.end_headers()
        if self.command == "HEAD":
            return
        with hub.lock:
            drop = hub.drop_after.pop(0) if hub.drop_after else None
        end = size if drop is None else min(size, start + drop)
        sent = self._write(f, start, end)
        with hub.lock:
            hub.body_bytes += sent
        if drop is not None:
            self.close_connection = True

    def _write(self, f: FakeFile, start: int, end: int) -> int:
        if f.data is not None:
            view = memoryview(f.data)
            pos = start
            while pos < end:
                n = min(1 << 20, end - pos)
                self.wfile.write(view[pos:pos + n])
                pos += n
            return end - start
        assert f.path is not None
        with f.path.open("rb") as fh:
            return int(self.connection.sendfile(fh, start, end - start))


def serve(hub: FakeHub) -> tuple[ThreadingHTTPServer, ThreadingHTTPServer]:
    """Start the hub and CDN servers on loopback ports (daemon threads); returns both."""
    servers = []
    for role in ("hub", "cdn"):
        handler = type(f"{role}Handler", (_Handler,), {"hub": hub, "role": role})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, args=(0.05,), name=f"fake-{role}",
                         daemon=True).start()
        servers.append(server)
    hub.hub_url = f"http://127.0.0.1:{servers[0].server_address[1]}"
    hub.cdn_url = f"http://127.0.0.1:{servers[1].server_address[1]}"
    return servers[0], servers[1]


def main(argv: list[str]) -> None:
    """`python hub_server.py REPO FILE PATH`: serve one file (benchmarks run it out of process)."""
    repo, filename, path = argv
    hub = FakeHub(use_cdn=False)
    hub.add_path(repo, filename, Path(path))
    serve(hub)
    print(hub.hub_url, flush=True)
    sys.stdin.read()  # until the parent closes our stdin


if __name__ == "__main__":
    main(sys.argv[1:])
