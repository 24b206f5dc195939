"""Streaming a reply into the store: timed flushes, final states, and crash recovery."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from app.engine.types import GenerationResult
from app.store import ReplyWriter, Store, StoredMessage, StoreError
from app.store.writer import ReplyEnding, ReplySink


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def saved_text(path: Path, message_id: int) -> tuple[str, str]:
    with Store.open(path) as other:
        msg = other.get_message(message_id)
        return msg.content, msg.state


def started(store: Store) -> tuple[int, int]:
    conv = store.create_conversation()
    user = store.add_user_message(conv.id, "question")
    msg = store.start_assistant(conv.id, user.id, "Model", "/m.gguf")
    assert msg.state == "partial" and msg.content == ""
    return conv.id, msg.id


def test_append_saves_at_most_every_interval(store: Store) -> None:
    _, msg_id = started(store)
    clock = FakeClock()
    writer = ReplyWriter(store, store.get_message(msg_id), flush_interval=0.5, clock=clock)
    for chunk in ["Hel", "lo", ","]:
        writer.append(chunk)
    assert writer.flush_count == 0
    assert saved_text(store.path, msg_id) == ("", "partial")
    clock.now += 0.5
    writer.append(" world")
    assert writer.flush_count == 1
    assert saved_text(store.path, msg_id) == ("Hello, world", "partial")
    clock.now += 0.2
    writer.append("!")  # too soon: buffered
    assert writer.flush_count == 1 and writer.text == "Hello, world!"
    clock.now += 0.4
    writer.append("")  # empty chunks are ignored
    writer.append("!")
    assert writer.flush_count == 2
    assert saved_text(store.path, msg_id) == ("Hello, world!!", "partial")


@pytest.mark.parametrize(
    ("reason", "error", "state", "saved_error"),
    [
        ("stop", None, "complete", None),
        ("length", None, "complete", None),
        ("cancelled", None, "cancelled", None),
        ("error", "llama.cpp failed", "error", "llama.cpp failed"),
        ("error", None, "error", "The model stopped with an error."),
    ],
)
def test_finish_records_state_stats_and_model(
    store: Store, reason: str, error: str | None, state: str, saved_error: str | None
) -> None:
    conv_id, msg_id = started(store)
    writer = store.reply_writer(msg_id)
    writer.append("partial text")
    result = GenerationResult(
        text="final text", finish_reason=reason, error=error, prompt_tokens=12,  # type: ignore[arg-type]
        reused_tokens=4, generated_tokens=9, ttft_s=0.123456, tokens_per_s=31.416,
        model_name="Engine Model", model_path="/models/engine.gguf",
    )
    done = writer.finish(result)
    assert done.state == state and done.error == saved_error and done.content == "final text"
    assert done.stats == result.stats()
    assert done.stats["finish_reason"] == reason and done.stats["ttft_s"] == 0.1235
    assert (done.model_name, done.model_file) == ("Engine Model", "/models/engine.gguf")
    assert writer.finish(result) is done  # finishing twice changes nothing
    assert saved_text(store.path, msg_id) == ("final text", state)
    assert store.current_branch(conv_id)[-1] == done


class RecordingSink:
    """A ReplySink that is not a Store: the writer must need nothing more than the protocol."""

    def __init__(self, message: StoredMessage) -> None:
        self.message = message
        self.saved: list[str] = []
        self.endings: list[ReplyEnding] = []

    def save_partial_text(self, message_id: int, text: str) -> None:
        assert message_id == self.message.id
        self.saved.append(text)

    def finish_reply(self, message_id: int, ending: ReplyEnding) -> StoredMessage:
        assert message_id == self.message.id
        self.endings.append(ending)
        return self.message


def test_writer_goes_through_the_reply_sink_protocol(store: Store) -> None:
    _, msg_id = started(store)
    sink = RecordingSink(store.get_message(msg_id))
    typed: ReplySink = sink  # structural: no Store method, private or public, beyond the protocol
    clock = FakeClock()
    writer = ReplyWriter(typed, sink.message, flush_interval=0.5, clock=clock)
    writer.append("Hi")
    clock.now += 1
    writer.append(" there")
    assert sink.saved == ["Hi there"]
    result = GenerationResult(text="", finish_reason="cancelled", model_name="M", model_path="/m")
    writer.finish(result)
    writer.cancel()  # already finished: ignored
    assert len(sink.endings) == 1
    ending = sink.endings[0]
    assert (ending.text, ending.state, ending.error) == ("Hi there", "cancelled", None)
    assert (ending.model_name, ending.model_file) == ("M", "/m")
    assert ending.stats is not None and ending.stats["finish_reason"] == "cancelled"
    assert saved_text(store.path, msg_id) == ("", "partial")  # the store itself was not used


def test_finish_keeps_streamed_text_when_result_has_none(store: Store) -> None:
    _, msg_id = started(store)
    writer = store.reply_writer(msg_id)
    writer.append("streamed")
    done = writer.finish(GenerationResult(text="", finish_reason="cancelled"))
    assert (done.content, done.state) == ("streamed", "cancelled")
    assert done.model_name == "Model"  # kept when the result does not name one


def test_writer_context_records_exceptions(store: Store) -> None:
    _, msg_id = started(store)
    with pytest.raises(RuntimeError), store.reply_writer(msg_id) as writer:
        writer.append("so far")
        raise RuntimeError("boom")
    msg = store.get_message(msg_id)
    assert (msg.content, msg.state, msg.error) == ("so far", "error", "RuntimeError: boom")

    _, msg_id = started(store)
    with pytest.raises(KeyboardInterrupt), store.reply_writer(msg_id) as writer:
        writer.append("stopped by ctrl-c")
        raise KeyboardInterrupt
    msg = store.get_message(msg_id)
    assert (msg.content, msg.state) == ("stopped by ctrl-c", "cancelled")


def test_writer_only_for_partial_messages(store: Store) -> None:
    conv = store.create_conversation()
    user = store.add_user_message(conv.id, "q")
    with pytest.raises(StoreError, match="is not being written"):
        store.reply_writer(user.id)


def test_closing_the_store_interrupts_its_unfinished_reply(db_path: Path) -> None:
    with Store.open(db_path) as store:
        _, msg_id = started(store)
        writer = store.reply_writer(msg_id)
        writer.append("half a reply")
        writer.flush()
    assert saved_text(db_path, msg_id) == ("half a reply", "interrupted")


def test_reopening_recovers_replies_of_a_dead_process(db_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # a pid that is gone
    with Store.open(db_path) as store:
        _, msg_id = started(store)
        store.reply_writer(msg_id).append("kept text")
        store.save_partial_text(msg_id, "kept text")
        store._conn.execute(
            "UPDATE messages SET writer_pid = ?, writer_started = 1.0 WHERE id = ?",
            (proc.pid, msg_id),
        )
        store._live.clear()  # as if this Store's process had died
    with Store.open(db_path) as store:
        assert store.recovered == 1
        msg = store.get_message(msg_id)
        assert (msg.content, msg.state) == ("kept text", "interrupted")


def test_reply_of_a_live_process_is_left_alone(db_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with Store.open(db_path) as store:
            _, msg_id = started(store)
            store._conn.execute(
                "UPDATE messages SET writer_pid = ?, writer_started = ? WHERE id = ?",
                (proc.pid, psutil.Process(proc.pid).create_time(), msg_id),
            )
            store._live.clear()  # the other process is the writer
        with Store.open(db_path) as store:
            assert store.recovered == 0
            assert store.get_message(msg_id).state == "partial"
    finally:
        proc.kill()
        proc.wait()
    with Store.open(db_path) as store:  # once it is gone, the reply is recovered
        assert store.recovered == 1
        assert store.get_message(msg_id).state == "interrupted"
