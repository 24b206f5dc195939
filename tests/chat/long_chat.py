"""A generated long conversation, stored in one transaction (tests and benchmarks)."""

from __future__ import annotations

from typing import Any

WORDS = ("river", "mountain", "llama", "ocean", "forest", "city", "garden", "engine", "violin",
         "planet", "bridge", "market", "island", "winter", "library", "harbour", "desert")


def text_of(i: int, role: str) -> str:
    words = " ".join(WORDS[(i * 7 + k) % len(WORDS)] for k in range(6 + i % 11))
    return f"{'Question' if role == 'user' else 'Answer'} {i}: {words}."


def document(messages: int, system_prompt: str = "", title: str = "long") -> dict[str, Any]:
    """An export document holding one conversation of ``messages`` alternating messages."""
    msgs = []
    for i in range(messages):
        role = "user" if i % 2 == 0 else "assistant"
        msgs.append({
            "id": i + 1, "parent": i or None, "role": role, "content": text_of(i, role),
            "created_at": 1.0 + i, "updated_at": 1.0 + i, "state": "complete", "error": None,
            "model_name": None, "model_file": None, "stats": {},
        })
    return {
        "format": "llama-desk-conversations", "version": 1, "app_version": "0.1.0",
        "exported_at": 1.0,
        "conversations": [{
            "id": 1, "title": title, "created_at": 1.0, "updated_at": 2.0,
            "system_prompt": system_prompt, "sampling": {}, "model": None, "pinned": False,
            "trashed_at": None, "current_leaf": messages or None, "messages": msgs,
        }],
    }


def store_long_chat(store: Any, messages: int, system_prompt: str = "") -> int:
    """Store a generated conversation of ``messages`` messages; returns its id."""
    return int(store.import_json(document(messages, system_prompt))[0])
