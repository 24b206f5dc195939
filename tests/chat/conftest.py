"""Chat-service fixtures: a ChatService on the scripted FakeEngine, with the starter loaded."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.chat.service import ChatService
from app.settings import AppSettings
from tests.ui.fakes import FakeEngine


@pytest.fixture
def settings() -> AppSettings:
    return AppSettings()


@pytest.fixture
def make_service(settings: AppSettings, starter_model: Path
                 ) -> Iterator[Callable[..., ChatService]]:
    """A ChatService (on this thread) over ``engine`` with the starter model loaded."""
    made: list[ChatService] = []

    def make(engine: FakeEngine | None = None, **kwargs: object) -> ChatService:
        service = ChatService(engine or FakeEngine(), settings=lambda: settings, **kwargs)  # type: ignore[arg-type]
        service.load_model()
        made.append(service)
        return service

    yield make
    for service in made:
        service.close()
