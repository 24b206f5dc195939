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
from app.store.writer import ReplyWriter

__all__ = [
    "AUTO",
    "MESSAGE_STATES",
    "Conversation",
    "ReplyWriter",
    "SearchHit",
    "Store",
    "StoreError",
    "StoredMessage",
]
