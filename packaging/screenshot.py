"""Render the window's main states to PNGs (run under Xvfb; `make screenshot`):

    xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python packaging/screenshot.py resources/screenshots

welcome.png (a new chat), conversation.png (code, a table, alternates), reading.png (a reply
reading a long prompt), dark.png (the conversation in the dark theme), model-manager.png, and
narrow.png (the sidebar folded away). Everything lives in a temporary LLAMA_DESK_HOME; replies
come from a scripted engine (tests/ui/fakes.py) so the pictures are the same on every run.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.engine.types import ModelInfo  # noqa: E402
from tests.ui.fakes import FakeEngine  # noqa: E402

MODEL = "Llama-2 7B chat Q4_K_M"

QUESTION = "How do I read a file line by line in Python, and why use `with`?"
ANSWER = """Use a `with` block: it closes the file even if an error happens halfway.

```python
from pathlib import Path

with Path("notes.txt").open(encoding="utf-8") as f:
    for number, line in enumerate(f, start=1):
        print(number, line.rstrip())  # rstrip() drops the newline at the end of each line
```

Why this works well:

| Concern | What `with` and iteration give you |
|:--|:--|
| Memory | one line at a time, so huge files are fine |
| Safety | `f.close()` runs even after an exception |
| Encoding | naming `utf-8` avoids surprises on Windows |

> Tip: `Path.read_text().splitlines()` is shorter when the file is small.
"""
FIRST_ANSWER = "Open it with `open()` and loop over the file object; each turn gives one line."
FOLLOW_UP = "Can I skip blank lines?"
FOLLOW_ANSWER = """Yes — test the stripped line:

- [x] `if line.strip():` skips empty lines
- [ ] lines with only spaces are skipped too, since `strip()` removes them

See https://docs.python.org/3/tutorial/inputoutput.html for more."""
NOTES = ("Summarise these release notes in three bullet points:\n\n"
         + " ".join(f"Version 2.{i}: faster start-up, a clearer settings page, fixes for the "
                    "search field and the export of long conversations; the model manager "
                    "now resumes interrupted downloads and checks every file it gets."
                    for i in range(1, 7)))
TITLES = (("Trip ideas for Lisbon", "A 3-day plan with trams, pastéis de nata and Sintra."),
          ("SQL window functions", "ROW_NUMBER() OVER (PARTITION BY …) numbers rows per group."),
          ("Weekly plan", "Monday: review the draft; Tuesday: dentist at 10."))


def fill(db: Path) -> int:
    from app.engine.types import GenerationResult
    from app.store import Store

    day = 86_400
    with Store.open(db) as store:
        for index, (title, answer) in enumerate(TITLES):
            conv = store.create_conversation(title=title)
            user = store.add_user_message(conv.id, title)
            msg = store.start_assistant(conv.id, user.id, model_name=MODEL)
            writer = store.reply_writer(msg.id)
            writer.append(answer)
            writer.finish(GenerationResult(text=answer, generated_tokens=30, tokens_per_s=40.0))
            when = time.time() - (index + 1) * day * (1 if index < 2 else 5)
            store._conn.execute("UPDATE conversations SET updated_at = ? WHERE id = ?",
                                (when, conv.id))
            store._conn.commit()
            if index == 2:
                store.set_pinned(conv.id, True)
        conv = store.create_conversation()
        user = store.add_user_message(conv.id, QUESTION)
        for answer, speed, ttft, tokens in ((FIRST_ANSWER, 39.5, 0.25, 24),
                                            (ANSWER, 41.8, 0.21, 168)):
            msg = store.start_assistant(conv.id, user.id, model_name=MODEL)
            writer = store.reply_writer(msg.id)
            writer.append(answer)
            writer.finish(GenerationResult(text=answer, generated_tokens=tokens,
                                           tokens_per_s=speed, ttft_s=ttft, prompt_tokens=200))
        user = store.add_user_message(conv.id, FOLLOW_UP)
        msg = store.start_assistant(conv.id, user.id, model_name=MODEL)
        writer = store.reply_writer(msg.id)
        writer.append(FOLLOW_ANSWER)
        writer.finish(GenerationResult(text=FOLLOW_ANSWER, generated_tokens=64,
                                       tokens_per_s=43.2, ttft_s=0.09, prompt_tokens=420,
                                       finish_reason="length", max_tokens=64))
        return conv.id


def register_model(home: Path) -> Path:
    """A small GGUF registered as "Llama-2 7B chat Q4_K_M" (the scripted engine answers)."""
    from app.hub import installed
    from tests.hub.fixtures import tiny_gguf

    path = home / "llama-2-7b-chat.Q4_K_M.gguf"
    tiny_gguf(path, payload_mib=0.2)
    return installed.import_model(path, name=MODEL).path


class ShotEngine(FakeEngine):
    """The scripted engine, describing itself as a Llama-2 model would."""

    def count_tokens(self, messages: Any) -> int:
        return sum(len(m.content) // 4 + 4 for m in messages)  # about what a tokenizer gives

    def load(self, path: str | Path, options: Any = None) -> ModelInfo:
        info = super().load(path, options)
        self.info = replace(info, format_name="llama-2")
        return self.info


def settle(app: Any, seconds: float = 0.6) -> None:
    from PySide6.QtCore import QEventLoop

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 30)
        time.sleep(0.01)


def wait(app: Any, done: Any, seconds: float = 60) -> None:
    from PySide6.QtCore import QEventLoop

    end = time.monotonic() + seconds
    while time.monotonic() < end and not done():
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 30)


def save(widget: Any, path: Path) -> None:
    if not widget.grab().save(str(path)):
        raise SystemExit(f"could not save {path}")
    print(f"saved {path}")


def main(out_dir: str) -> int:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="llama-desk-shot-"))
    os.environ["LLAMA_DESK_HOME"] = str(home)
    from PySide6.QtGui import QCursor

    from app import paths
    from app import settings as app_settings
    from app.ui.application import create_app
    from app.ui.main_window import MainWindow
    from app.ui.tasks import funnel
    app = create_app()
    funnel()
    conv_id = fill(paths.database_path())
    model = register_model(home)
    settings = app_settings.load()
    settings.model = str(model)
    app_settings.save(settings)
    engine = ShotEngine(["Sure"], n_ctx=4096)
    window = MainWindow(engine_factory=lambda: engine)
    window.resize(1280, 860)
    window.show()
    QCursor.setPos(0, 0)  # no hover effects in the pictures
    wait(app, lambda: window.model_state == "ready" and bool(window.picker.verdicts))
    window.banners.clear()

    window.new_chat()
    settle(app)
    save(window, out / "welcome.png")

    window.open_conversation(conv_id)
    window.composer.set_text("Thanks! And how do I write lines back?")
    settle(app)
    save(window, out / "conversation.png")

    window.settings.theme = "dark"
    window.on_theme_changed()
    window.open_conversation(conv_id)
    settle(app)
    save(window, out / "dark.png")
    window.settings.theme = "light"
    window.on_theme_changed()
    window.open_conversation(conv_id)

    engine.prefill_steps = 60
    engine.prefill_delay = 0.1
    engine.script = ["Writing", " is", " just", " as", " easy."]
    window.composer.set_text("")
    window.send(NOTES)
    wait(app, lambda: window._progress[1] > 0
         and window._progress[0] >= window._progress[1] * 0.45, 30)
    settle(app, 0.05)
    save(window, out / "reading.png")
    wait(app, lambda: not window.generating, 30)

    window.open_model_manager()
    manager = window._manager
    manager.resize(1000, 640)
    wait(app, lambda: "…" not in {manager.tree.topLevelItem(0).child(j).text(2)
                                  for j in range(manager.tree.topLevelItem(0).childCount())})
    settle(app)
    save(manager, out / "model-manager.png")
    manager.hide()

    window.resize(840, 760)
    settle(app)
    save(window, out / "narrow.png")
    app_settings.save(window.settings)
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "resources" / "screenshots")))
