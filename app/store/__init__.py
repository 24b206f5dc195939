"""The conversation store: one SQLite file with message trees, full-text search, trash and export."""

from app.store.db import Store
from app.store.models import (
    AUTO,
    MESSAGE_STATES,
    Conversation,
    SearchHit,
    StoredMessage,
    StoreError,
)
from app.store.writer import ReplyEnding, ReplySink, ReplyWriter

__all__ = [
    "AUTO",
    "MESSAGE_STATES",
    "Conversation",
    "ReplyEnding",
    "ReplySink",
    "ReplyWriter",
    "SearchHit",
    "Store",
    "StoreError",
    "StoredMessage",
]
