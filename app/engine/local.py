"""LocalEngine: llama.cpp here or in a child process (RPC workers); ``engine:`` refs on a remote engine."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from app.engine.engine import EngineThreadError, LlamaEngine
from app.engine.isolated import IsolatedEngine
from app.engine.protocol import Generation, ProgressCallback
from app.engine.remote.engine import RemoteEngine
from app.engine.remote.registry import is_ref
from app.engine.types import EngineState, LoadOptions, Message, ModelInfo, PreparedPrompt, Sampling


class LocalEngine:
    """The engine every face uses for models on this machine (the Engine protocol).

    Each load picks where the model runs: llama.cpp in this process, or, when the load options
    name RPC workers, in a child process (a worker that vanishes makes ggml abort its process:
    the child dies, this process and its conversation do not); a reference ``engine:NAME/MODEL``
    goes to a remote engine (``app.engine.remote``). Owned by the thread that creates it.
    """

    def __init__(self) -> None:
        self._owner = threading.get_ident()
        self._engine: LlamaEngine | IsolatedEngine | RemoteEngine = LlamaEngine()

    def _check(self) -> LlamaEngine | IsolatedEngine | RemoteEngine:
        if threading.get_ident() != self._owner:
            raise EngineThreadError(f"the engine belongs to thread {self._owner} but was called "
                                    f"from {threading.current_thread().name}")
        return self._engine

    @property
    def remote(self) -> bool:
        """Whether the model is served by a remote engine."""
        return isinstance(self._engine, RemoteEngine)

    @property
    def isolated(self) -> bool:
        """Whether the model runs in a child process (it uses RPC workers)."""
        return isinstance(self._engine, IsolatedEngine)

    @property
    def info(self) -> ModelInfo | None:
        return self._check().info

    def load(self, path: str | Path, options: LoadOptions | None = None) -> ModelInfo:
        options = options or LoadOptions()
        engine = self._check()
        kind = RemoteEngine if is_ref(path) else IsolatedEngine if options.rpc_servers \
            else LlamaEngine
        if type(engine) is not kind:
            engine.close()
            self._engine = engine = kind()
        return engine.load(path, options)

    def prepare(self, messages: Sequence[Message], sampling: Sampling) -> PreparedPrompt:
        return self._check().prepare(messages, sampling)

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return self._check().count_tokens(messages)

    def generate(self, messages: Sequence[Message], sampling: Sampling | None = None, *,
                 on_progress: ProgressCallback | None = None) -> Generation:
        return self._check().generate(messages, sampling, on_progress=on_progress)

    def generate_text(self, text: str, sampling: Sampling | None = None, *,
                      on_progress: ProgressCallback | None = None) -> Generation:
        return self._check().generate_text(text, sampling, on_progress=on_progress)

    def cancel(self) -> None:
        self._engine.cancel()

    def close(self) -> None:
        self._check().close()

    def save_state(self) -> EngineState | None:
        return self._check().save_state()

    def restore_state(self, state: EngineState, *, upto: int | None = None) -> int:
        return self._check().restore_state(state, upto=upto)
