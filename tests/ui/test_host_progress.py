"""EngineHost.prompt_progress on the real engine: real numbers at every batch boundary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.chat.service import ChatService
from app.engine.engine import LlamaEngine
from app.settings import AppSettings
from app.ui.worker import EngineHost
from tests.engine.test_prefill import LONG

pytestmark = pytest.mark.slow


def test_prompt_progress_is_emitted_at_batch_boundaries(qtbot: Any, starter_model: Path,
                                                        tmp_path: Path) -> None:
    settings = AppSettings(context_size=2048, gpu_layers=0)
    settings.sampling = {**settings.sampling, "max_tokens": 4, "seed": 1}
    host = EngineHost(lambda: ChatService(LlamaEngine(), settings=lambda: settings,
                                          db_path=tmp_path / "c.sqlite3"))
    try:
        with qtbot.waitSignal(host.loaded, timeout=120_000):
            host.load(str(starter_model))
        seen: list[tuple[int, int, int]] = []
        host.prompt_progress.connect(lambda mid, read, total: seen.append((mid, read, total)))
        with qtbot.waitSignal(host.reply_finished, timeout=300_000) as blocker:
            host.send(None, LONG)
        done = blocker.args[0]
        total = done.result.prompt_tokens - done.result.reused_tokens
        assert total > 1024
        assert {mid for mid, _, _ in seen} == {done.message.id}
        reads = [read for _, read, _ in seen]
        assert all(t == total for _, _, t in seen)
        assert reads[0] == 0 and reads[-1] == total and reads == sorted(reads)
        assert len([r for r in reads if 0 < r < total]) >= 2  # boundaries, not start and end
    finally:
        assert host.close()
