"""One-time notices for the user from Qt-free code (a damaged settings file set aside, no log file).

Code below the faces calls ``add``; the CLI installs a ``sink`` that prints each notice as one
``llama-desk: warning:`` line at once, and the window shows the queued ones (``take``) as banners.
"""

from __future__ import annotations

from collections.abc import Callable

sink: Callable[[str], None] | None = None
_queued: list[str] = []


def add(text: str) -> None:
    """Tell the user ``text`` once: through the sink when a face installed one, else queued."""
    if sink is not None:
        sink(text)
    else:
        _queued.append(text)


def take() -> list[str]:
    """The queued notices, oldest first; each is handed out once."""
    out = list(_queued)
    _queued.clear()
    return out
