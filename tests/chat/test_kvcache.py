"""Kept KV states: RAM then checksummed files; damaged or foreign files ignored; LRU cap on disk."""

from __future__ import annotations

import os
from pathlib import Path

from app.chat.kvcache import MAGIC, StateCache
from app.engine.types import EngineState


def state(key: str = "model-a", n: int = 100, fill: int = 7) -> EngineState:
    return EngineState(key, list(range(n)), bytes([fill]) * (1000 + n))


def any_tokens(_tokens: list[int]) -> bool:
    return True


def test_ram_then_disk_round_trip(tmp_path: Path) -> None:
    cache = StateCache(tmp_path, 10**6)
    kept = state()
    cache.put("c1", kept)
    assert cache.get("c1", "model-a", any_tokens) == (kept, 100)  # from RAM, whole
    cache.close()
    files = list(tmp_path.iterdir())
    assert [f.name for f in files] == ["c1.kvstate"] and files[0].read_bytes().startswith(MAGIC)
    if os.name == "posix":  # the user's alone, like the conversations
        assert files[0].stat().st_mode & 0o077 == 0
    again = StateCache(tmp_path, 10**6)  # a new process: from the file
    found = again.get("c1", "model-a", any_tokens)
    assert found is not None
    assert found[0].tokens == kept.tokens and found[0].data == kept.data and found[1] == 100
    assert again.stats.disk_hits == 1


def test_from_a_file_only_what_was_read_in_batches_is_used(tmp_path: Path) -> None:
    cache = StateCache(tmp_path, 10**6)
    kept = EngineState("model-a", list(range(100)), b"x" * 500, batched=80)
    cache.put("c1", kept)
    assert cache.get("c1", "model-a", any_tokens) == (kept, 100)  # this process: all of it
    cache.close()
    seen: list[list[int]] = []
    found = StateCache(tmp_path, 10**6).get("c1", "model-a", lambda t: bool(seen.append(t)) or True)
    assert found is not None and found[1] == 80 and seen == [list(range(80))]


def test_foreign_or_unwanted_states_are_not_used(tmp_path: Path) -> None:
    cache = StateCache(tmp_path, 10**6)
    cache.put("c1", state())
    cache.close()
    fresh = StateCache(tmp_path, 10**6)
    assert fresh.get("c1", "model-b", any_tokens) is None  # another model / context / options
    assert fresh.get("c1", "model-a", lambda tokens: tokens[:3] == [9, 9, 9]) is None
    assert fresh.get("c2", "model-a", any_tokens) is None  # nothing kept for it
    assert (tmp_path / "c1.kvstate").exists()  # not damaged: kept for its own model


def test_damaged_files_are_ignored_and_removed(tmp_path: Path) -> None:
    cache = StateCache(tmp_path, 10**6)
    cache.put("flip", state())
    cache.put("cut", state())
    cache.put("junk", state())
    cache.close()
    flip = tmp_path / "flip.kvstate"
    raw = bytearray(flip.read_bytes())
    raw[-10] ^= 0xFF  # one bit of the data: the checksum no longer matches
    flip.write_bytes(bytes(raw))
    cut = tmp_path / "cut.kvstate"
    cut.write_bytes(cut.read_bytes()[:-50])  # truncated
    (tmp_path / "junk.kvstate").write_bytes(b"not a state at all")
    fresh = StateCache(tmp_path, 10**6)
    for name in ("flip", "cut", "junk"):
        assert fresh.get(name, "model-a", any_tokens) is None
        assert not (tmp_path / f"{name}.kvstate").exists()
    assert fresh.stats.rejected == 3


def test_the_cap_evicts_the_least_recently_used_first(tmp_path: Path) -> None:
    probe = StateCache(tmp_path / "probe", 10**6)
    probe.put("x", state())
    probe.close()
    one = (tmp_path / "probe" / "x.kvstate").stat().st_size + 10  # a file's size
    cache = StateCache(tmp_path, 3 * one)
    for i in range(3):
        cache.put(f"c{i}", state(fill=i))
        cache.flush()
        os.utime(tmp_path / f"c{i}.kvstate", ns=(10**18 + i, 10**18 + i))
    # c0 is used again (reading it from disk touches it): c1 is now the oldest.
    assert StateCache(tmp_path, 3 * one).get("c0", "model-a", any_tokens) is not None
    cache.put("c3", state(fill=3))
    cache.close()
    names = sorted(p.stem for p in tmp_path.glob("*.kvstate"))
    assert names == ["c0", "c2", "c3"] and cache.stats.evicted == 1


def test_ram_keeps_a_few_and_zero_cap_keeps_no_files(tmp_path: Path) -> None:
    cache = StateCache(tmp_path, 0, ram_states=2)
    for i in range(3):
        cache.put(f"c{i}", state(fill=i))
    assert cache.get("c0", "model-a", any_tokens) is None  # pushed out of RAM
    assert cache.get("c2", "model-a", any_tokens) is not None
    cache.close()
    assert list(tmp_path.iterdir()) == []


def test_a_newer_state_replaces_the_older(tmp_path: Path) -> None:
    cache = StateCache(tmp_path, 10**6)
    cache.put("c1", state(n=10))
    cache.put("c1", state(n=20))
    cache.close()
    found = StateCache(tmp_path, 10**6).get("c1", "model-a", any_tokens)
    assert found is not None and len(found[0].tokens) == 20
