"""Store fixtures: a fresh database in the test's own home folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.store import Store


@pytest.fixture
def db_path(llama_desk_home: Path) -> Path:
    return llama_desk_home / "data" / "conversations.sqlite3"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    with Store.open(db_path) as opened:
        yield opened
