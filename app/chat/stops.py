"""Stop strings: cut a streamed reply before the first one, holding back text that may start one."""

from __future__ import annotations

from collections.abc import Sequence


class StopMatcher:
    """Feed the reply's chunks in order; get back the text that is safe to show.

    Text that could be the start of a stop string is held back until the next chunk decides
    it; once a stop string appears, everything from it on is dropped and ``hit`` is set. The
    text shown is always exactly the reply up to (not including) the earliest stop string.
    """

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = tuple(s for s in stops if s)
        self.hit = False
        self._held = ""

    def feed(self, chunk: str) -> str:
        """The part of ``held + chunk`` that can be shown now ("" once a stop was hit)."""
        if self.hit:
            return ""
        text = self._held + chunk
        found = [i for i in (text.find(s) for s in self.stops) if i >= 0]
        if found:
            self.hit = True
            self._held = ""
            return text[:min(found)]
        keep = self._partial_suffix(text)
        self._held = text[len(text) - keep:] if keep else ""
        return text[:len(text) - keep]

    def flush(self) -> str:
        """The held-back text, when the reply ended without a stop string."""
        held, self._held = self._held, ""
        return "" if self.hit else held

    def _partial_suffix(self, text: str) -> int:
        """Length of the longest end of ``text`` that is a proper start of a stop string."""
        best = 0
        for stop in self.stops:
            for n in range(min(len(stop) - 1, len(text)), best, -1):
                if text.endswith(stop[:n]):
                    best = n
                    break
        return best
