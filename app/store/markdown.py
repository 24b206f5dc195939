"""Markdown rendering of a conversation's current branch: roles, models, times, states."""

from __future__ import annotations

import time

from app.store.models import Conversation, StoredMessage, heading_parts


def when(seconds: float) -> str:
    """A local date and time with its UTC offset, e.g. 2026-11-25 21:04 +0000."""
    return time.strftime("%Y-%m-%d %H:%M %z", time.localtime(seconds))


def quote(text: str) -> str:
    return "\n".join("> " + line if line else ">" for line in text.splitlines() or [""])


def render_message(msg: StoredMessage) -> str:
    head = heading_parts(msg, when, state="*{}*")
    lines = [f"### {' · '.join(head)}", ""]
    lines.append(msg.content if msg.content else "*(empty)*")
    if msg.state == "error" and msg.error:
        lines += ["", f"> **Error:** {msg.error}"]
    stats = msg.stats
    if msg.role == "assistant" and stats.get("generated_tokens"):
        lines += [
            "",
            f"<sub>{stats.get('generated_tokens')} tokens · "
            f"{stats.get('tokens_per_s', 0)} tokens/s · first token after "
            f"{stats.get('ttft_s', 0)} s</sub>",
        ]
    return "\n".join(lines)


def render_conversation(conv: Conversation, branch: list[StoredMessage]) -> str:
    meta = [f"Created {when(conv.created_at)}", f"updated {when(conv.updated_at)}"]
    if conv.model:
        meta.append(f"model {conv.model}")
    if conv.pinned:
        meta.append("pinned")
    if conv.trashed_at is not None:
        meta.append("in the trash")
    parts = [f"# {conv.display_title}", "", "*" + " · ".join(meta) + "*"]
    if conv.system_prompt:
        parts += ["", "**System prompt**", "", quote(conv.system_prompt)]
    for msg in branch:
        parts += ["", render_message(msg)]
    return "\n".join(parts)
