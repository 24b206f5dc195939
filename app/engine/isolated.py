"""An Engine in a child process for models on RPC workers: a lost worker ends the child, not the app.

ggml's RPC client aborts the process when a worker stops answering (``GGML_ABORT`` in
ggml-rpc.cpp; nothing can catch it), so a model that uses workers runs in a spawned child process
that owns a plain :class:`~app.engine.engine.Engine`. :class:`IsolatedEngine` has the same calls
as ``Engine``; when the child dies mid-reply the reply ends as ``error`` with a message naming the
lost worker (the text so far is kept by whoever stores it), and the next request loads the model
again in a fresh child (failing with :class:`~app.engine.rpc.WorkerError` while a worker is down).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import pickle
import threading
import time
import traceback
from collections.abc import Generator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from app.engine.engine import LlamaEngine, LoadOptions, ModelInfo
from app.engine.generation import StreamedGeneration
from app.engine.protocol import ProgressCallback
from app.engine.rpc import LOST_MARKER, WorkerError, lost_message, still_reachable
from app.engine.types import EngineState, Message, PreparedPrompt, Sampling
from app.errors import UserError

log = logging.getLogger(__name__)
CANCEL_GRACE_S = 10.0  # after Stop, a child stuck on a silent worker is ended after this long


# -- the child ----------------------------------------------------------------------------------------
class _Side:
    """Child → parent messages that may come from any thread: log records, ggml's last words."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self._lock = threading.Lock()

    def send(self, item: tuple[str, Any]) -> None:
        with self._lock, contextlib.suppress(OSError, ValueError):
            self._conn.send(item)


class _ForwardLogs(logging.Handler):
    def __init__(self, side: _Side) -> None:
        super().__init__(logging.INFO)
        self._side = side

    def emit(self, record: logging.LogRecord) -> None:
        self._side.send(("log", (record.name, record.levelno, record.getMessage())))


def _portable(err: BaseException) -> BaseException:
    """``err`` if it survives pickling, else a RuntimeError carrying its text."""
    try:
        pickle.loads(pickle.dumps(err))
        return err
    except Exception:
        return RuntimeError(f"{type(err).__name__}: {err}")


def _serve(conn: Any, cancel_conn: Any, side_conn: Any) -> None:
    """The child's main loop: run each request on one Engine, stream replies chunk by chunk."""
    from app.engine import rpc

    side = _Side(side_conn)
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    root.addHandler(_ForwardLogs(side))
    engine = LlamaEngine()
    rpc.install_abort_hook(lambda line: side.send(("fatal", line)))

    def watch_cancel() -> None:
        while True:
            try:
                cancel_conn.recv()
            except (EOFError, OSError):
                return
            engine.cancel()

    threading.Thread(target=watch_cancel, name="cancel", daemon=True).start()
    while True:
        try:
            method, args = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            break
        try:
            if method in ("generate", "generate_text"):
                generation = getattr(engine, method)(
                    *args, on_progress=lambda done, total: conn.send(("progress", (done, total))))
                conn.send(("ok", generation.prompt))
                for chunk in generation:
                    conn.send(("chunk", chunk))
                conn.send(("done", generation.result))
            else:
                conn.send(("ok", getattr(engine, method)(*args)))
        except BaseException as err:  # every failure goes back to the caller
            if not isinstance(err, UserError):
                side.send(("log", (__name__, logging.ERROR, traceback.format_exc())))
            conn.send(("error", _portable(err)))
    engine.close()


# -- the parent -------------------------------------------------------------------------------------
class IsolatedEngine:
    """``Engine``'s calls, run by an Engine in a child process (one owner thread here too)."""

    def __init__(self) -> None:
        self._proc: Any = None
        self._conn: Any = None
        self._cancel_conn: Any = None
        self._cancel_lock = threading.Lock()
        self._fatal: list[str] = []
        self._info: ModelInfo | None = None
        self._loaded_as: tuple[Path, LoadOptions] | None = None
        self._active: IsolatedGeneration | None = None
        self.last_prompt: PreparedPrompt | None = None

    @property
    def info(self) -> ModelInfo | None:
        return self._info

    @property
    def loaded(self) -> bool:
        return self._info is not None

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        return self._proc.pid if self._proc is not None and self._proc.is_alive() else None

    # -- the child process ---------------------------------------------------------------------
    def _start(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        conn, child_conn = ctx.Pipe()
        cancel_r, cancel_w = ctx.Pipe(duplex=False)
        side_r, side_w = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_serve, args=(child_conn, cancel_r, side_w), daemon=True,
                           name="llama-desk-engine")
        proc.start()
        for end in (child_conn, cancel_r, side_w):
            end.close()
        self._proc, self._conn, self._cancel_conn = proc, conn, cancel_w
        self._fatal = []
        threading.Thread(target=self._read_side, args=(side_r,), name="engine-side", daemon=True).start()

    def _read_side(self, side: Any) -> None:
        while True:
            try:
                kind, payload = side.recv()
            except (EOFError, OSError):
                return
            if kind == "fatal":
                self._fatal.append(str(payload))
                log.error("engine process: %s", str(payload).strip())
            else:
                name, level, text = payload
                logging.getLogger(name).log(level, "[engine process] %s", text)

    def _stop_child(self) -> None:
        proc, self._proc = self._proc, None
        for conn in (self._conn, self._cancel_conn):
            if conn is not None:
                conn.close()
        self._conn = self._cancel_conn = None
        if proc is not None:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)

    def _death_message(self, loading: bool = False) -> str:
        """Why the child ended: a lost worker (named when it no longer listens) or a crash."""
        proc = self._proc
        if proc is not None:
            proc.join(5)
        code = proc.exitcode if proc is not None else None
        time.sleep(0.05)  # the side pipe's last message may still be on its way
        fatal = " ".join(self._fatal)
        endpoints = self._loaded_as[1].rpc_servers if self._loaded_as else ()
        if endpoints and (LOST_MARKER in fatal or not all(map(still_reachable, endpoints))):
            return lost_message(endpoints, loading=loading)
        detail = f": {fatal.strip()}" if fatal.strip() else ""
        if loading:
            return (f"The engine process ended while loading the model (exit status {code}){detail}; "
                    "see the log, then load it again.")
        return (f"The engine process ended unexpectedly (exit status {code}){detail}; the reply so "
                "far is kept; regenerate to load the model again.")

    def _died(self, loading: bool = False) -> WorkerError:
        message = self._death_message(loading)
        self._stop_child()
        self._info = None
        return WorkerError(message)

    def _request(self, method: str, *args: Any) -> Any:
        active, self._active = self._active, None
        if active is not None:
            active.close()  # a reply left half-read: stop it and read it out, keeping us in step
        if self._proc is None or not self._proc.is_alive():
            if self._proc is not None:
                raise self._died(loading=method == "load")
            self._start()
        try:
            self._conn.send((method, args))
            kind, payload = self._conn.recv()
        except (EOFError, OSError):
            raise self._died(loading=method == "load") from None
        if kind == "error":
            raise payload
        return payload

    def _ensure_loaded(self) -> None:
        """After a lost worker: load the same model again (raises while a worker is still down)."""
        if self._info is None and self._loaded_as is not None:
            path, options = self._loaded_as
            log.info("reloading %s in a new engine process", path)
            self._load(path, options)  # a failure keeps the model to try again next time

    # -- Engine's calls ----------------------------------------------------------------------------
    def load(self, path: str | Path, options: LoadOptions | None = None) -> ModelInfo:
        """Load ``path`` in the child (starting it); the workers are probed first."""
        options = options or LoadOptions()
        self._loaded_as = (Path(path), options)
        try:
            return self._load(Path(path), options)
        except UserError:
            self._loaded_as = None
            raise

    def _load(self, path: Path, options: LoadOptions) -> ModelInfo:
        if self._proc is not None and not self._proc.is_alive():
            self._stop_child()
        self._info = None
        info: ModelInfo = self._request("load", path, options)
        self._info = info
        return info

    def close(self) -> None:
        """Free the model and end the child process (safe to call twice)."""
        self._info = None
        self._loaded_as = None
        self.last_prompt = None
        if self._proc is not None and self._proc.is_alive():
            try:
                self._conn.send(("close", ()))
                self._conn.recv()
            except (EOFError, OSError):
                pass
        self._stop_child()

    def cancel(self) -> None:
        """Stop the current generation within one token (thread-safe)."""
        with self._cancel_lock, contextlib.suppress(OSError, ValueError):
            if self._cancel_conn is not None:
                self._cancel_conn.send(True)

    def prepare(self, messages: Sequence[Message], sampling: Sampling) -> PreparedPrompt:
        self._ensure_loaded()
        prompt: PreparedPrompt = self._request("prepare", list(messages), sampling)
        return prompt

    def count_tokens(self, messages: Sequence[Message]) -> int:
        self._ensure_loaded()
        return int(self._request("count_tokens", list(messages)))

    def generate(self, messages: Sequence[Message], sampling: Sampling | None = None, *,
                 on_progress: ProgressCallback | None = None) -> IsolatedGeneration:
        """Start a reply in the child. Raises ``UserError`` at once for a prompt that cannot fit."""
        sampling = sampling or Sampling()
        self._ensure_loaded()
        prompt = self._request("generate", list(messages), sampling)
        self.last_prompt = prompt
        self._active = IsolatedGeneration(self, prompt, sampling, on_progress)
        return self._active

    def generate_text(self, text: str, sampling: Sampling | None = None, *,
                      on_progress: ProgressCallback | None = None) -> IsolatedGeneration:
        """A plain text completion in the child (see ``LlamaEngine.generate_text``)."""
        sampling = sampling or Sampling()
        self._ensure_loaded()
        prompt = self._request("generate_text", text, sampling)
        self.last_prompt = prompt
        self._active = IsolatedGeneration(self, prompt, sampling, on_progress)
        return self._active

    def save_state(self) -> EngineState | None:
        """Not kept for a model on workers: the child's context lives and dies with it."""
        return None

    def restore_state(self, state: EngineState, *, upto: int | None = None) -> int:
        return 0


class IsolatedGeneration(StreamedGeneration):
    """``Generation``'s interface over the child: chunks, then ``result``."""

    def __init__(self, engine: IsolatedEngine, prompt: PreparedPrompt, sampling: Sampling,
                 on_progress: ProgressCallback | None = None) -> None:
        self._on_progress = on_progress
        self.sampling = sampling
        self._engine = engine
        self._pieces: list[str] = []
        self._started = self._finished = False
        super().__init__(prompt, lambda _result: self._stream())

    def _stream(self) -> Generator[str, None, None]:
        engine = self._engine
        conn = engine._conn
        cancelled_at: float | None = None
        self._started = True
        try:
            while True:
                try:
                    if not conn.poll(0.25):
                        if engine._proc is None or not engine._proc.is_alive():
                            raise EOFError
                        if cancelled_at is not None and time.monotonic() - cancelled_at > CANCEL_GRACE_S:
                            # Stopped, but the child is stuck in llama.cpp waiting on a silent worker.
                            log.warning("engine process did not stop in %.0f s; ending it", CANCEL_GRACE_S)
                            engine._proc.kill()
                            raise EOFError
                        continue
                    kind, payload = conn.recv()
                except (EOFError, OSError):
                    self._fail(engine._died() if engine._proc is not None else None, cancelled_at)
                    return
                if kind == "progress":
                    if self._on_progress is not None:
                        self._on_progress(*payload)
                    continue
                if kind == "chunk":
                    self._pieces.append(payload)
                    try:
                        yield payload
                    except GeneratorExit:
                        engine.cancel()
                        cancelled_at = time.monotonic()
                        self._drain(conn)
                        raise
                elif kind == "done":
                    self._result = payload
                    return
                else:  # "error": a failure inside the engine, as Engine itself would report it
                    self._result = replace(self._result, finish_reason="error", error=str(payload),
                                           text="".join(self._pieces))
                    return
        finally:
            self._finished = True
            if engine._active is self:
                engine._active = None

    def _drain(self, conn: Any) -> None:
        """After a cancel: read up to the child's final result (or its death)."""
        started = time.monotonic()
        while time.monotonic() - started < CANCEL_GRACE_S:
            try:
                if conn.poll(0.25):
                    kind, payload = conn.recv()
                    if kind == "progress":
                        continue
                    if kind == "chunk":
                        self._pieces.append(payload)
                        continue
                    if kind == "done":
                        self._result = payload
                    return
            except (EOFError, OSError):
                break
            if self._engine._proc is None or not self._engine._proc.is_alive():
                break
        self._fail(self._engine._died(), started)

    def _fail(self, err: WorkerError | None, cancelled_at: float | None) -> None:
        text = "".join(self._pieces)
        if cancelled_at is not None:
            self._result = replace(self._result, finish_reason="cancelled", text=text)
        else:
            self._result = replace(self._result, finish_reason="error", text=text,
                                   error=str(err) if err else "The model process ended.")
        self._result.generated_tokens = self._result.generated_tokens or len(self._pieces)

    def close(self) -> None:
        """Stop early; ``result`` then reports ``cancelled``."""
        if self._finished:
            return
        if not self._started:  # never iterated: the child is streaming into the pipe regardless
            self._started = self._finished = True
            if self._engine._active is self:
                self._engine._active = None
            self._engine.cancel()
            if self._engine._conn is not None:
                self._drain(self._engine._conn)
            return
        super().close()


def engine_for(options: LoadOptions) -> LlamaEngine | IsolatedEngine:
    """The engine a load with ``options`` should use: isolated when it has RPC workers."""
    return IsolatedEngine() if options.rpc_servers else LlamaEngine()
