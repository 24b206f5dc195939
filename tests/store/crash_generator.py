"""Helper process for the crash test: streams a real starter-model reply into the store.

Usage: crash_generator.py DB_PATH MODEL_PATH. Prints ``user CONV MSG`` once the user message is
committed, ``flushed MSG`` after the first save of reply text, and ``finished STATE`` at the end
(the test kills it with SIGKILL before that).
"""

from __future__ import annotations

import sys
from pathlib import Path

from app.engine.engine import LlamaEngine, LoadOptions
from app.engine.types import Message, Sampling
from app.store import Store

PROMPT = (
    "Write a very long story, in many chapters, about a walrus who sails around the world. "
    "Describe every port, every storm and every friend in detail."
)


def main(db_path: Path, model: Path) -> None:
    store = Store.open(db_path)
    conv = store.create_conversation()
    user = store.add_user_message(conv.id, PROMPT)
    print("user", conv.id, user.id, flush=True)
    engine = LlamaEngine()
    info = engine.load(model, LoadOptions(n_ctx=4096, n_gpu_layers=0))
    msg = store.start_assistant(conv.id, user.id, info.name, str(info.path))
    writer = store.reply_writer(msg.id)
    generation = engine.generate(
        [Message("user", PROMPT)], Sampling(max_tokens=2000, seed=1, temperature=0.8)
    )
    announced = False
    for chunk in generation:
        writer.append(chunk)
        if writer.flush_count and not announced:
            print("flushed", msg.id, flush=True)
            announced = True
    done = writer.finish(generation.result)
    print("finished", done.state, flush=True)
    store.close()
    engine.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
