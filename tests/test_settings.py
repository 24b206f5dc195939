"""App settings: typed, validated, saved atomically, and a damaged file never blocks start-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app import settings
from app.errors import SettingsError

ROOT = Path(__file__).resolve().parents[1]


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


def test_engine_settings_round_trip_and_reach_the_load_options() -> None:
    s = settings.load()
    assert (s.threads, s.batch_threads, s.kv_cache_type, s.state_cache_gb) == (None, None,
                                                                                "f16", 4.0)
    s.threads, s.batch_threads, s.kv_cache_type, s.state_cache_gb = 3, 5, "q8_0", 1
    settings.save(s)
    again = settings.load()
    assert (again.threads, again.batch_threads, again.kv_cache_type, again.state_cache_gb) == (
        3, 5, "q8_0", 1)
    opts = again.load_options()
    assert (opts.n_threads, opts.n_threads_batch, opts.kv_type) == (3, 5, "q8_0")


def test_bad_values_are_refused_on_save() -> None:
    s = settings.load()
    s.sampling = {**s.sampling, "temprature": 0.5}
    with pytest.raises(SettingsError, match="Unknown sampling setting"):
        settings.save(s)
    s = settings.load()
    s.context_size = 10
    with pytest.raises(SettingsError, match="Context size 10"):
        settings.save(s)


@pytest.mark.parametrize("text", [
    "{not json", "null", "[]", '"settings"', "5", '{"model": 5}', '{"context_size": "big"}',
    '{"gpu_layers": true}', '{"sampling": {"temperature": NaN}}', '{"sampling": []}',
    '{"prompt_formats": {"/m.gguf": "chatml"}}', '{"context_size": 10}', '{"font_size": 1e9}',
])
def test_a_damaged_file_is_kept_aside_and_said_once(text: str) -> None:
    from app import notices

    notices.take()
    path = settings.settings_path()
    path.write_text(text, encoding="utf-8")
    loaded = settings.load()
    assert loaded == settings.AppSettings()
    [aside] = list(path.parent.glob("settings.json.bad-*"))
    assert aside.read_text(encoding="utf-8") == text and not path.exists()
    [notice] = notices.take()
    assert "settings file was damaged" in notice and str(aside) in notice
    assert settings.load() == settings.AppSettings() and notices.take() == []  # said once


def test_older_files_with_dropped_settings_still_load() -> None:
    path = settings.settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    # hub_endpoint was saved by earlier versions and is no longer a setting.
    path.write_text(json.dumps({"context_size": 2048, "hub_endpoint": "https://example.org"}),
                    encoding="utf-8")
    loaded = settings.load()
    assert loaded.context_size == 2048 and not hasattr(loaded, "hub_endpoint")
    assert not list(path.parent.glob("settings.json.bad-*"))
    settings.save(loaded)
    assert "hub_endpoint" not in json.loads(path.read_text(encoding="utf-8"))


def test_unknown_keys_from_another_version_are_ignored() -> None:
    settings.settings_path().write_text(json.dumps({"font_size": 14, "theme": "dark"}))
    assert settings.load().font_size == 14


def test_nan_never_reaches_the_file() -> None:
    s = settings.load()
    s.sampling = {**s.sampling, "temperature": float("nan")}
    with pytest.raises(SettingsError, match="finite"):
        settings.save(s)


def test_saved_settings_are_private() -> None:
    settings.save(settings.load())
    assert settings.settings_path().stat().st_mode & 0o777 == 0o600
    assert settings.settings_path().parent.stat().st_mode & 0o777 == 0o700


@pytest.mark.slow
def test_chat_starts_with_a_damaged_file_and_says_so_once(llama_desk_home: Path) -> None:
    text = '{"model": 5}'  # was "unexpected AttributeError" on every start
    path = settings.settings_path()
    path.write_text(text, encoding="utf-8")
    env = {**os.environ, "LLAMA_DESK_HOME": str(llama_desk_home)}
    runs = [subprocess.run([sys.executable, "main.py", "chat", "--no-save", "--max-tokens", "2",
                            "hi"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
            for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr
    warning = [line for line in runs[0].stderr.splitlines() if "settings file was damaged" in line]
    assert len(warning) == 1 and warning[0].startswith("llama-desk: warning: ")
    assert "settings file" not in runs[1].stderr and "Traceback" not in runs[0].stderr
    [aside] = list(path.parent.glob("settings.json.bad-*"))
    assert aside.read_text() == text


def test_every_setting_has_a_type_check() -> None:
    """A new setting missing from the file check would be silently dropped on every load."""
    import dataclasses

    assert set(settings._TYPES) == {f.name for f in dataclasses.fields(settings.AppSettings)}
