"""API server fixtures: a server on a free loopback port over a scripted engine (RecordingEngine)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from app.chat.service import ChatService
from app.engine.owner import EngineOwner
from app.server.config import ServerConfig
from app.server.runner import ApiServer
from app.settings import AppSettings
from tests.ui.fakes import FakeEngine, FakeGeneration


class RecordingEngine(FakeEngine):
    """A FakeEngine that keeps every generation with when it ran, to check order and cancels."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.generations: list[FakeGeneration] = []
        self.spans: list[tuple[float, float]] = []
        self.running = threading.Event()  # set while a generation is being iterated

    def generate(self, *args: Any, **kwargs: Any) -> FakeGeneration:
        gen = super().generate(*args, **kwargs)
        self.generations.append(gen)
        return _Timed(gen, self)  # type: ignore[return-value]

    def generate_text(self, *args: Any, **kwargs: Any) -> FakeGeneration:
        gen = super().generate_text(*args, **kwargs)
        self.generations.append(gen)
        return _Timed(gen, self)  # type: ignore[return-value]


class _Timed:
    def __init__(self, gen: FakeGeneration, engine: RecordingEngine) -> None:
        self._gen, self._engine = gen, engine
        self.prompt = gen.prompt

    def __iter__(self) -> Iterator[str]:
        started = time.monotonic()
        self._engine.running.set()
        try:
            yield from self._gen
        finally:
            self._engine.running.clear()
            self._engine.spans.append((started, time.monotonic()))

    def close(self) -> None:
        self._gen.close()

    @property
    def result(self) -> Any:
        return self._gen.result


@dataclass
class Served:
    server: ApiServer
    owner: EngineOwner[ChatService]
    engine: RecordingEngine
    settings: AppSettings = field(default_factory=AppSettings)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def root(self) -> str:
        return self.server.url.removesuffix("/v1")


@pytest.fixture
def serve_fake() -> Iterator[Callable[..., Served]]:
    """Start an API server on port 0 over a RecordingEngine with 'fake.gguf' loaded."""
    made: list[Served] = []

    def start(engine: RecordingEngine | None = None, *, save_history: bool = False,
              settings: AppSettings | None = None, **config: Any) -> Served:
        engine = engine or RecordingEngine()
        app_settings = settings or AppSettings()
        owner: EngineOwner[ChatService] = EngineOwner(
            lambda: ChatService(engine, settings=lambda: app_settings))
        owner.call(owner.resource.load_model, "/models/fake.gguf")
        server = ApiServer(owner, ServerConfig(**{"port": 0, **config}),
                           save_history=lambda: save_history)
        served = Served(server, owner, engine, app_settings)
        made.append(served)
        server.start()
        return served

    yield start
    for served in made:
        served.server.stop()
        served.owner.close(10)
