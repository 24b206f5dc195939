"""Text for a terminal: user and model data can never send control sequences to it.

A title, a message, a model name or a file name may hold escape sequences (``\\x1b]0;…\\x07``
retitles the terminal, colour codes, cursor moves, an OSC 52 clipboard write), a carriage
return that overwrites the line, or bidirectional overrides that reorder what is shown.
``clean`` makes each visible instead of letting the terminal act on it.
"""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, C1 controls (8-bit CSI/OSC), bidi embeddings/overrides/
# isolates, and the line/paragraph separators.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
_CONTROL_ONE_LINE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if code < 0x20:
        return chr(0x2400 + code)  # the Unicode "control pictures": ␛ for ESC, ␇ for BEL
    if code == 0x7F:
        return "\u2421"  # ␡
    return f"\\u{code:04x}" if code > 0xFF else f"\\x{code:02x}"


def clean(text: str, *, one_line: bool = False) -> str:
    """``text`` with every control character shown as a visible stand-in.

    Tabs and newlines are kept unless ``one_line`` (titles, names, table cells).
    """
    pattern = _CONTROL_ONE_LINE if one_line else _CONTROL
    return pattern.sub(_visible, text)
