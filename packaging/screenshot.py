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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

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
            msg = store.start_assistant(conv.id, user.id, model_name="Llama-2 7B chat Q4_K_M")
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
            msg = store.start_assistant(conv.id, user.id, model_name="Llama-2 7B chat Q4_K_M")
            writer = store.reply_writer(msg.id)
            writer.append(answer)
            writer.finish(GenerationResult(text=answer, generated_tokens=tokens,
                                           tokens_per_s=speed, ttft_s=ttft, prompt_tokens=200))
        user = store.add_user_message(conv.id, FOLLOW_UP)
        msg = store.start_assistant(conv.id, user.id, model_name="Llama-2 7B chat Q4_K_M")
        writer = store.reply_writer(msg.id)
        writer.append(FOLLOW_ANSWER)
        writer.finish(GenerationResult(text=FOLLOW_ANSWER, generated_tokens=64,
                                       tokens_per_s=43.2, ttft_s=0.09, prompt_tokens=420,
                                       finish_reason="length", max_tokens=64))
        return conv.id


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
    from app import paths
    from app import settings as app_settings
    from app.ui.application import create_app
    from app.ui.main_window import MainWindow
    from app.ui.tasks import funnel
    from tests.ui.fakes import FakeEngine

    app = create_app()
    funnel()
    conv_id = fill(paths.database_path())
    engine = FakeEngine(["Sure"], n_ctx=4096, name="Llama-2 7B chat Q4_K_M")
    window = MainWindow(engine_factory=lambda: engine)
    window.resize(1280, 820)
    window.show()
    wait(app, lambda: window.model_state == "ready" and bool(window.picker.verdicts))
    window.banners.clear()

    window.new_chat()
    settle(app)
    save(window, out / "welcome.png")

    window.open_conversation(conv_id)
    window.composer.set_text("Thanks! And how do I write lines back?")
    settle(app)
    save(window, out / "conversation.png")

    engine.prefill_steps = 60
    engine.prefill_delay = 0.1
    engine.script = ["Writing", " is", " just", " as", " easy."]
    window.composer.set_text("")
    window.send("Now summarise this whole conversation in three bullet points, please.")
    wait(app, lambda: window._progress[1] > 0
         and window._progress[0] >= window._progress[1] * 0.45, 30)
    settle(app, 0.05)
    save(window, out / "reading.png")
    wait(app, lambda: not window.generating, 30)

    window.settings.theme = "dark"
    window.on_theme_changed()
    window.open_conversation(conv_id)
    settle(app)
    save(window, out / "dark.png")
    window.settings.theme = "light"
    window.on_theme_changed()

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
