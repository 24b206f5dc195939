"""Configured remote engines (engines.json in the config folder) and their API keys (OS keyring)."""

from __future__ import annotations

import json
import logging
import re
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import quote, unquote

from app import fileio, keychain, paths
from app.engine.remote.address import host_of, normalize_url
from app.engine.remote.errors import EngineNotFoundError, RemoteEngineError
from app.netaddr import is_private_host

log = logging.getLogger(__name__)

ENGINES_FILE = "engines.json"
KINDS = ("auto", "llama-server", "vllm", "openai")
REF_PREFIX = "engine:"
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
NO_KEYRING = ("No OS keyring is available (for example a headless Linux without Secret "
              "Service), and Llama Desk never writes API keys to files, so the key cannot be kept")
_lock = threading.Lock()


@dataclass(frozen=True)
class EngineConfig:
    """One configured engine. ``public_http`` records that the user accepted plain http to a
    public host; ``has_key`` that an API key is in the keyring (the key itself never is here)."""

    name: str
    url: str
    kind: str = "auto"
    has_key: bool = False
    public_http: bool = False

    def key(self) -> str | None:
        """The API key from the OS keyring (None when there is none)."""
        return keychain.get_secret(key_name(self.name)) if self.has_key else None


def key_name(name: str) -> str:
    return f"engine-key:{name}"


def engines_path() -> Path:
    return paths.config_dir() / ENGINES_FILE


def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise RemoteEngineError(f"Engine name {name!r} is not allowed; use letters, digits, "
                                "'.', '_' and '-' (up to 64, starting with a letter or digit).")
    return name


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise RemoteEngineError(f"Unknown engine kind {kind!r}; use one of: {', '.join(KINDS)}.")
    return kind


def list_engines() -> list[EngineConfig]:
    """The configured engines, in the order they were added (a damaged file reads as none)."""
    out: list[EngineConfig] = []
    for item in fileio.read_json_list(engines_path(), "engines"):
        try:
            out.append(EngineConfig(
                name=check_name(str(item["name"])), url=normalize_url(str(item["url"])),
                kind=check_kind(str(item.get("kind", "auto"))), has_key=bool(item.get("has_key")),
                public_http=bool(item.get("public_http"))))
        except (KeyError, TypeError, RemoteEngineError) as err:
            log.warning("engine entry skipped: %s", err)
    return out


def _save(engines: list[EngineConfig]) -> None:
    text = json.dumps({"engines": [asdict(e) for e in engines]}, indent=2)
    fileio.write_text(engines_path(), text)


def get_engine(name: str) -> EngineConfig:
    for engine in list_engines():
        if engine.name == name:
            return engine
    known = ", ".join(e.name for e in list_engines()) or "none yet"
    raise EngineNotFoundError(f"No engine is called {name!r} (configured: {known}); add it with "
                              "`llama-desk engines add NAME URL`.")


def add_engine(name: str, url: str, *, kind: str = "auto", key: str | None = None,
               public_http: bool = False) -> EngineConfig:
    """Add (or replace) engine ``name``; ``key`` goes to the OS keyring, never to a file."""
    check_name(name)
    check_kind(kind)
    url = normalize_url(url)
    key = (key or "").strip() or None
    if key is not None and (any(ch.isspace() for ch in key) or len(key) > 4096):
        raise RemoteEngineError("That API key has spaces or line breaks in it; paste the key "
                                "alone (one line).")
    if key is not None and not keychain.keyring_available():
        raise RemoteEngineError(f"{NO_KEYRING}: set up a keyring (Secret Service, KWallet, the "
                                "macOS or Windows keychain) and add the engine again.")
    config = EngineConfig(name, url, kind, has_key=key is not None,
                          public_http=public_http and url.startswith("http://"))
    with _lock:
        engines = [e for e in list_engines() if e.name != name]
        if key is not None:
            keychain.set_secret(key_name(name), key, what=f"the API key of engine {name}")
        else:
            keychain.delete_secret(key_name(name), what=f"the old API key of engine {name}")
        _save([*engines, config])
    return config


def remove_engine(name: str) -> EngineConfig:
    """Forget engine ``name`` and its key."""
    with _lock:
        engine = get_engine(name)
        _save([e for e in list_engines() if e.name != name])
        keychain.delete_secret(key_name(name), what=f"the API key of engine {name}")
    return engine


def adhoc_engine(url: str) -> EngineConfig:
    """An unconfigured engine for ``chat --engine URL`` (kind auto, no key).

    Plain http to a public host is refused here: add such an engine with ``engines add --yes``.
    """
    url = normalize_url(url)
    if url.startswith("http://") and not is_private_host(host_of(url)):
        raise RemoteEngineError(
            f"{url} is plain http to a public host, so the conversation would travel "
            "unencrypted; use its https:// address, or add it with `llama-desk engines add NAME "
            f"{url} --yes` to accept that.")
    return EngineConfig(name=url, url=url)


# -- model references ------------------------------------------------------------------------------
@dataclass(frozen=True)
class EngineRef:
    """``engine:NAME/MODEL`` (a configured engine) or ``engine:<quoted URL>/MODEL`` (an ad hoc
    one); MODEL empty means the server's first model. Survives ``str(Path(ref))``."""

    engine: str  # a configured engine's name, or a base URL
    model: str = ""

    @property
    def is_url(self) -> bool:
        return "://" in self.engine

    def __str__(self) -> str:
        where = quote(self.engine, safe="") if self.is_url else self.engine
        model = quote(self.model, safe="/:@+,=~")
        return f"{REF_PREFIX}{where}/{model}" if model else f"{REF_PREFIX}{where}"

    @property
    def label(self) -> str:
        """How faces name it: ``MODEL @ ENGINE``."""
        where = self.engine.split("://", 1)[-1] if self.is_url else self.engine
        # llama-server calls a model by its file path unless given --alias: show the file name.
        model = self.model.rsplit("/", 1)[-1] if self.model.startswith("/") else self.model
        return f"{model or 'default model'} @ {where}"

    def config(self) -> EngineConfig:
        return adhoc_engine(self.engine) if self.is_url else get_engine(self.engine)


def is_ref(text: str | Path) -> bool:
    return str(text).startswith(REF_PREFIX)


def parse_ref(text: str | Path) -> EngineRef:
    """The reference in ``text`` (backslashes read as slashes: a Windows path of a ref)."""
    body = str(text)[len(REF_PREFIX):].replace("\\", "/") if is_ref(text) else ""
    where, _, model = body.partition("/")
    where = unquote(where)
    if not where:
        raise RemoteEngineError(f"{text!s} names no engine; use engine:NAME/MODEL.")
    if "://" not in where:
        check_name(where)
    return EngineRef(where, unquote(model).strip("/"))
