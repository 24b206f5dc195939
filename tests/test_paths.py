"""Locations: platformdirs by default, everything under LLAMA_DESK_HOME when it is set."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import paths


def test_home_puts_everything_under_one_folder(llama_desk_home: Path) -> None:
    places = paths.describe()
    for name, place in places.items():
        assert place.is_relative_to(llama_desk_home.resolve()), name
    assert paths.models_dir() == llama_desk_home.resolve() / "data" / "models"
    assert paths.models_dir().is_dir() and paths.logs_dir().is_dir()


def test_platformdirs_when_no_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LLAMA_DESK_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    assert paths.data_dir() == tmp_path / "xdg-data" / "llama-desk"
    assert paths.config_dir() == tmp_path / "xdg-config" / "llama-desk"
    assert paths.cache_dir() == tmp_path / "xdg-cache" / "llama-desk"
    assert paths.logs_dir().is_relative_to(tmp_path / "xdg-state" / "llama-desk")
    assert paths.database_path().parent == paths.data_dir()


def test_resources_dir_holds_the_icons() -> None:
    assert (paths.resources_dir() / "icons" / "llama-desk.svg").is_file()
