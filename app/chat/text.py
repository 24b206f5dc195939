"""Text arriving from outside (terminal, arguments, API): invalid UTF-8 replaced, said once."""

from __future__ import annotations

import contextlib
import sys

REPLACEMENT = "\ufffd"


def scrub(text: str) -> tuple[str, bool]:
    """``text`` with each undecodable byte (a surrogate escape) and lone surrogate replaced by
    U+FFFD; and whether anything was replaced. Valid text comes back unchanged."""
    try:
        text.encode("utf-8")
        return text, False
    except UnicodeEncodeError:
        return "".join(REPLACEMENT if 0xD800 <= ord(c) <= 0xDFFF else c for c in text), True


class InputCleaner:
    """Scrubs each piece of input; the first time something is replaced it says so on stderr."""

    def __init__(self) -> None:
        self.replaced = False

    def __call__(self, text: str) -> str:
        clean, changed = scrub(text)
        if changed and not self.replaced:
            self.replaced = True
            print("llama-desk: note: the input was not valid UTF-8; the undecodable bytes were "
                  f"replaced by {REPLACEMENT}.", file=sys.stderr)
        return clean


def utf8_terminal() -> None:
    """Read stdin keeping undecodable bytes (scrubbed later) and never fail writing stdout."""
    for stream, errors in ((sys.stdin, "surrogateescape"), (sys.stdout, "replace"),
                           (sys.stderr, "replace")):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(ValueError, OSError):  # not a text stream we may change
                reconfigure(errors=errors)
