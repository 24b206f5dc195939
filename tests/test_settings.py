"""App settings: typed, validated, saved atomically, and a damaged file never blocks start-up."""

from __future__ import annotations

import json

import pytest

from app import settings
from app.errors import SettingsError


def test_defaults_round_trip() -> None:
    s = settings.load()
    assert s.context_size == 4096 and s.gpu_layers is None
    assert s.default_sampling().temperature == 0.6
    s.context_size, s.gpu_layers = 2048, 12
    s.prompt_formats["/m/llama.gguf"] = "llama-2"
    settings.save(s)
    again = settings.load()
    assert again.context_size == 2048 and again.gpu_layers == 12
    opts = again.load_options("/m/llama.gguf")
    assert opts.prompt_format == "llama-2" and opts.n_ctx == 2048 and opts.n_gpu_layers == 12


def test_bad_values_are_refused_on_save() -> None:
    s = settings.load()
    s.sampling = {**s.sampling, "temprature": 0.5}
    with pytest.raises(SettingsError, match="Unknown sampling setting"):
        settings.save(s)
    s = settings.load()
    s.context_size = 10
    with pytest.raises(SettingsError, match="Context size 10"):
        settings.save(s)


def test_damaged_file_is_kept_aside() -> None:
    path = settings.settings_path()
    path.write_text("{not json", encoding="utf-8")
    assert settings.load().context_size == 4096
    assert path.with_name(path.name + ".damaged").read_text(encoding="utf-8") == "{not json"
    path.write_text(json.dumps({"context_size": "big"}), encoding="utf-8")
    assert settings.load().context_size == 4096


def test_older_files_with_dropped_settings_still_load() -> None:
    path = settings.settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    # hub_endpoint was saved by earlier versions and is no longer a setting.
    path.write_text(json.dumps({"context_size": 2048, "hub_endpoint": "https://example.org"}),
                    encoding="utf-8")
    loaded = settings.load()
    assert loaded.context_size == 2048 and not hasattr(loaded, "hub_endpoint")
    assert not path.with_name(path.name + ".damaged").exists()
    settings.save(loaded)
    assert "hub_endpoint" not in json.loads(path.read_text(encoding="utf-8"))
