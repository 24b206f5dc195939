"""Typed app settings saved as JSON in the config dir (window geometry alone lives in QSettings)."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app import fileio, notices, paths
from app.engine.engine import LoadOptions
from app.engine.types import Sampling
from app.errors import SettingsError

log = logging.getLogger(__name__)
SETTINGS_FILE = "settings.json"


@dataclass
class AppSettings:
    """App-wide choices. ``gpu_layers`` None = automatic; ``model`` is the last model used.

    ``threads`` (decode) and ``batch_threads`` (reading prompts) None = chosen as llama.cpp does;
    ``kv_cache_type`` f16, q8_0 or q4_0; ``state_cache_gb`` caps the conversations' kept KV
    states on disk (0: keep none on disk).
    """

    context_size: int = 4096
    gpu_layers: int | None = None
    threads: int | None = None
    batch_threads: int | None = None
    kv_cache_type: str = "f16"
    state_cache_gb: float = 4.0
    font_size: int = 11
    theme: str = "system"  # "system" (follow the OS), "light" or "dark"
    model: str | None = None
    default_system_prompt: str = ""
    sampling: dict[str, Any] = field(default_factory=lambda: Sampling().to_dict())
    prompt_formats: dict[str, str] = field(default_factory=dict)  # model path -> format override
    workers: list[str] = field(default_factory=list)  # llama.cpp RPC workers, "host:port"
    # The local API server run by the window (the key lives in the keyring, never here).
    api_server: bool = False
    api_port: int = 8765
    api_lan: bool = False  # listen on every network interface (needs a key), not only loopback
    api_origins: list[str] = field(default_factory=list)  # web pages allowed to call it (CORS)
    api_save_history: bool = False  # store each API chat request as a conversation

    def load_options(self, model_path: str | Path | None = None) -> LoadOptions:
        """Engine load options from these settings (format override per model file)."""
        fmt = self.prompt_formats.get(str(model_path), "auto") if model_path else "auto"
        return LoadOptions(n_ctx=self.context_size, n_gpu_layers=self.gpu_layers,
                           n_threads=self.threads, n_threads_batch=self.batch_threads,
                           prompt_format=fmt, kv_type=self.kv_cache_type,
                           rpc_servers=tuple(self.workers))

    def default_sampling(self) -> Sampling:
        return Sampling.from_dict(self.sampling)

    def validate(self) -> None:
        if not isinstance(self.workers, list) or not all(isinstance(w, str) for w in self.workers):
            raise SettingsError("Workers must be a list of \"host:port\" strings.")
        self.load_options()
        self.default_sampling()
        if isinstance(self.state_cache_gb, bool) or not isinstance(
                self.state_cache_gb, int | float) or not 0 <= self.state_cache_gb <= 10_000:
            raise SettingsError(f"KV state cache size {self.state_cache_gb!r} GB is out of range; "
                                "use 0 to 10000.")
        if not 6 <= self.font_size <= 48:
            raise SettingsError(f"Font size {self.font_size} is out of range; use 6 to 48.")
        if isinstance(self.api_port, bool) or not isinstance(self.api_port, int) \
                or not 1 <= self.api_port <= 65535:
            raise SettingsError(f"API server port {self.api_port} is out of range; use 1 to 65535.")
        if not isinstance(self.api_origins, list) or not all(
                isinstance(o, str) for o in self.api_origins):
            raise SettingsError("API server origins must be a list of web addresses.")
        if self.theme not in ("system", "light", "dark"):
            raise SettingsError(f"Theme {self.theme!r} is unknown; use system, light or dark.")


def settings_path() -> Path:
    return paths.config_dir() / SETTINGS_FILE


# The type each field of settings.json must have (None allowed where the default is None).
_TYPES: dict[str, tuple[type, ...]] = {
    "context_size": (int,), "gpu_layers": (int, type(None)), "threads": (int, type(None)),
    "batch_threads": (int, type(None)), "kv_cache_type": (str,), "state_cache_gb": (int, float),
    "font_size": (int,), "model": (str, type(None)),
    "default_system_prompt": (str,), "sampling": (dict,), "prompt_formats": (dict,),
    "workers": (list,), "api_server": (bool,), "api_port": (int,), "api_lan": (bool,),
    "api_origins": (list,), "api_save_history": (bool,), "theme": (str,),
}
PROMPT_FORMATS = ("auto", "llama-2", "template")
def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a valid number")


def _parse(text: str) -> AppSettings:
    """Settings from the file's text; ValueError/SettingsError saying what is wrong."""
    raw = json.loads(text, parse_constant=_reject_constant)
    if not isinstance(raw, dict):
        raise ValueError(f"the file holds {type(raw).__name__}, not an object of settings")
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in _TYPES:
            continue  # a setting from another version: ignored, not an error
        if (isinstance(value, bool) and bool not in _TYPES[name]) \
                or not isinstance(value, _TYPES[name]):
            raise ValueError(f"{name} must be {_TYPES[name][0].__name__}, not {value!r:.40}")
        values[name] = value
    formats = values.get("prompt_formats", {})
    for key, fmt in formats.items():
        if fmt not in PROMPT_FORMATS:
            raise ValueError(f"prompt format {fmt!r:.40} for {key[:80]} is not one of "
                             f"{', '.join(PROMPT_FORMATS)}")
    settings = AppSettings(**values)
    settings.validate()
    return settings


def load() -> AppSettings:
    """Read settings; a missing file gives defaults, a damaged one is kept aside and replaced.

    Damaged means anything but an object of known settings with the right types and values
    (``null``, ``[]``, ``{"model": 5}``, NaN, a context size of 10). The file is renamed to
    ``settings.json.bad-<UTC time>``, the defaults are used, and ``app.notices`` says so once.
    """
    path = settings_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return AppSettings()
    except (OSError, UnicodeDecodeError) as err:
        notices.add(f"Settings file {path} cannot be read ({err}); using the defaults.")
        return AppSettings()
    try:
        return _parse(text)
    except (ValueError, TypeError, SettingsError) as err:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        aside = path.with_name(f"{path.name}.bad-{stamp}")
        try:
            os.replace(path, aside)
            kept = f"it was kept as {aside}"
        except OSError as move_err:
            kept = f"it could not be moved aside ({move_err.strerror})"
        problem = str(err).rstrip(".")
        log.warning("settings file was damaged (%s); %s, using defaults", problem, kept)
        notices.add(f"The settings file was damaged ({problem[:200]}); {kept}. "
                        "Llama Desk started with the default settings.")
        return AppSettings()


def save(settings: AppSettings) -> None:
    """Validate, then write atomically and privately (``app.fileio``): never half a file."""
    settings.validate()
    text = json.dumps(dataclasses.asdict(settings), indent=2, allow_nan=False)
    fileio.write_text(settings_path(), text)
