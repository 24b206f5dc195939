"""Render the main window holding a sample conversation to a PNG (run under Xvfb for the README).

    xvfb-run -s "-screen 0 1400x900x24" .venv/bin/python packaging/screenshot.py resources/screenshot.png

Everything lives in a temporary LLAMA_DESK_HOME; the starter model answers nothing here, it is
only loaded so the status line shows a real model.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QUESTION = "How do I read a file line by line in Python, and why use `with`?"
ANSWER = """Use a `with` block: it closes the file even if an error happens halfway.

```python
from pathlib import Path

with Path("notes.txt").open(encoding="utf-8") as f:
    for number, line in enumerate(f, start=1):
        print(number, line.rstrip())
```

Why this works well:

- **Memory**: the file object yields one line at a time, so large files are fine.
- **Safety**: `with` calls `f.close()` for you.
- **Encoding**: naming `utf-8` avoids surprises on Windows.
"""
FOLLOW_UP = "Can I skip blank lines?"
FOLLOW_ANSWER = "Yes — test the stripped line: `if line.strip(): ...` skips empty ones."


def fill(db: Path) -> int:
    from app.engine.types import GenerationResult
    from app.store import Store

    with Store.open(db) as store:
        for title, pinned in (("Trip ideas for Lisbon", False), ("SQL window functions", False),
                              ("Weekly plan", True)):
            conv = store.create_conversation(title=title)
            store.add_user_message(conv.id, title)
            if pinned:
                store.set_pinned(conv.id, True)
        conv = store.create_conversation()
        exchanges = ((QUESTION, ANSWER, 41.8, 0.21, 118), (FOLLOW_UP, FOLLOW_ANSWER, 43.2, 0.09, 19))
        for question, answer, speed, ttft, tokens in exchanges:
            user = store.add_user_message(conv.id, question)
            msg = store.start_assistant(conv.id, user.id, model_name="Llama-2 7B chat Q4_K_M")
            writer = store.reply_writer(msg.id)
            writer.append(answer)
            writer.finish(GenerationResult(text=answer, generated_tokens=tokens, tokens_per_s=speed,
                                           ttft_s=ttft, prompt_tokens=200))
        return conv.id


def main(out: str) -> int:
    home = Path(tempfile.mkdtemp(prefix="llama-desk-shot-"))
    os.environ["LLAMA_DESK_HOME"] = str(home)
    from PySide6.QtCore import QEventLoop

    from app import paths
    from app.ui.application import create_app
    from app.ui.main_window import MainWindow, window_settings

    app = create_app()
    conv_id = fill(paths.database_path())
    qs = window_settings()
    qs.setValue("last_conversation", conv_id)
    qs.sync()
    window = MainWindow()
    window.resize(1280, 800)
    window.show()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (window.model_state != "ready" or not window.picker.verdicts):
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
    window.composer.set_text("Thanks! And how do I write lines back?")
    for _ in range(20):
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        time.sleep(0.02)
    window.chat.verticalScrollBar().setValue(0)
    app.processEvents()
    ok = window.grab().save(out)
    window.close()
    print(f"saved {out}" if ok else f"could not save {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "resources" / "screenshot.png")))
