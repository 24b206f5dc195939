"""Every configured engine's models, for the model pickers (one short request per engine)."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from app.engine.remote.errors import RemoteEngineError
from app.engine.remote.http import Connection
from app.engine.remote.probe import list_models
from app.engine.remote.registry import EngineConfig, EngineRef, list_engines

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RemoteModel:
    """One picker entry: a model on an engine (``ref`` loads it), or an engine that did not
    answer (``ref`` empty, ``problem`` says why)."""

    engine: str
    ref: str
    label: str
    problem: str = ""


def _engine_models(config: EngineConfig) -> list[RemoteModel]:
    try:
        conn = Connection(config)
        try:
            models = list_models(conn)
        finally:
            conn.close()
    except RemoteEngineError as err:
        log.info("engine %s not listed: %s", config.name, err)
        return [RemoteModel(config.name, "", f"{config.name} — not available", str(err))]
    return [RemoteModel(config.name, str(ref), f"{ref.label} — remote")
            for ref in (EngineRef(config.name, m.id) for m in models)]


def remote_models() -> list[RemoteModel]:
    """Each configured engine's models (from its /v1/models), engines asked side by side; an
    engine that does not answer gives one entry saying so. No engines: no request at all."""
    engines = list_engines()
    if not engines:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(engines))) as pool:
        found = list(pool.map(_engine_models, engines))
    return [entry for entries in found for entry in entries]
