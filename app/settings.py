"""Typed app settings saved as JSON in the config dir (window geometry alone lives in QSettings)."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app import paths
from app.engine.engine import LoadOptions
from app.engine.types import Sampling
from app.errors import SettingsError

log = logging.getLogger(__name__)
SETTINGS_FILE = "settings.json"


@dataclass
class AppSettings:
    """App-wide choices. ``gpu_layers`` None = automatic; ``model`` is the last model used."""

    context_size: int = 4096
    gpu_layers: int | None = None
    threads: int | None = None
    font_size: int = 11
    theme: str = "system"  # "system" (follow the OS), "light" or "dark"
    model: str | None = None
    default_system_prompt: str = ""
    sampling: dict[str, Any] = field(default_factory=lambda: Sampling().to_dict())
    prompt_formats: dict[str, str] = field(default_factory=dict)  # model path -> format override

    def load_options(self, model_path: str | Path | None = None) -> LoadOptions:
        """Engine load options from these settings (format override per model file)."""
        fmt = self.prompt_formats.get(str(model_path), "auto") if model_path else "auto"
        return LoadOptions(n_ctx=self.context_size, n_gpu_layers=self.gpu_layers,
                           n_threads=self.threads, prompt_format=fmt)

    def default_sampling(self) -> Sampling:
        return Sampling.from_dict(self.sampling)

    def validate(self) -> None:
        self.load_options()
        self.default_sampling()
        if not 6 <= self.font_size <= 48:
            raise SettingsError(f"Font size {self.font_size} is out of range; use 6 to 48.")
        if self.theme not in ("system", "light", "dark"):
            raise SettingsError(f"Theme {self.theme!r} is unknown; use system, light or dark.")


def settings_path() -> Path:
    return paths.config_dir() / SETTINGS_FILE


def load() -> AppSettings:
    """Read settings; a missing file gives defaults, a damaged one is kept aside and replaced."""
    path = settings_path()
    if not path.exists():
        return AppSettings()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        known = {f.name for f in dataclasses.fields(AppSettings)}
        settings = AppSettings(**{k: v for k, v in raw.items() if k in known})
        settings.validate()
        return settings
    except (ValueError, TypeError, SettingsError) as err:
        aside = path.with_name(path.name + ".damaged")
        os.replace(path, aside)
        log.warning("settings file was damaged (%s); kept as %s, using defaults", err, aside)
        return AppSettings()


def save(settings: AppSettings) -> None:
    """Write atomically (temp file + rename) so a crash never leaves half a file."""
    settings.validate()
    path = settings_path()
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(dataclasses.asdict(settings), indent=2), encoding="utf-8")
    os.replace(tmp, path)
