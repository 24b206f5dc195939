"""Search speed on 10,000 conversations / 500,000 messages: median query time must be < 50 ms.

Run with `make bench` (prints the figures). Builds the database in a temporary folder.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

from app.store import Store

CONVERSATIONS = 10_000
MESSAGES_PER_CONVERSATION = 50
TARGET_MEDIAN_MS = 50.0

REAL_WORDS = [
    "walrus", "arctic", "python", "database", "sqlite", "memory", "thread", "model", "token",
    "generate", "answer", "question", "recipe", "garden", "travel", "budget", "invoice",
    "kernel", "compile", "network", "router", "keyboard", "window", "export", "import",
    "history", "search", "branch", "reply", "assistant", "summary", "translate", "poem", "story",
    "chapter", "ocean", "mountain", "river", "forest", "winter", "summer", "coffee", "bread",
    "cheese", "violin", "guitar", "piano", "chess", "tennis",
]
SYLLABLES = "ka lo mi ne ru ta shi vo pe da gri fen tor bal sim quo lex zan mur"


def vocabulary(rng: random.Random, size: int = 4000) -> list[str]:
    syllables = SYLLABLES.split()
    words = set(REAL_WORDS)
    while len(words) < size:
        words.add("".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))))
    ordered = sorted(words)
    rng.shuffle(ordered)
    return ordered


def build(path: Path) -> tuple[float, int]:
    rng = random.Random(1234)
    words = vocabulary(rng)
    # Zipf-like frequencies: a few words are very common, most are rare.
    weights = [1.0 / (rank + 1) for rank in range(len(words))]
    cumulative: list[float] = []
    total = 0.0
    for w in weights:
        total += w
        cumulative.append(total)
    began = time.perf_counter()
    with Store.open(path) as store:
        conn = store._conn
        conn.execute("BEGIN IMMEDIATE")
        now = time.time() - 86400 * 365
        conn.executemany(
            "INSERT INTO conversations(id, title, created_at, updated_at, current_leaf_id)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                (c + 1, f"conversation {c + 1}", now + c * 60, now + c * 60 + 50,
                 (c + 1) * MESSAGES_PER_CONVERSATION)
                for c in range(CONVERSATIONS)
            ),
        )

        def rows() -> Iterator[tuple[object, ...]]:
            message_id = 0
            for c in range(CONVERSATIONS):
                parent = None
                for i in range(MESSAGES_PER_CONVERSATION):
                    message_id += 1
                    n = rng.randint(8, 30) if i % 2 == 0 else rng.randint(20, 120)
                    text = " ".join(rng.choices(words, cum_weights=cumulative, k=n))
                    role = "user" if i % 2 == 0 else "assistant"
                    t = now + c * 60 + i
                    yield (message_id, c + 1, parent, role, text, t, t)
                    parent = message_id

        conn.executemany(
            "INSERT INTO messages(id, conversation_id, parent_id, role, content, created_at,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows(),
        )
        conn.execute("COMMIT")
        conn.execute("INSERT INTO messages_fts(messages_fts) VALUES ('optimize')")
        count = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
    return time.perf_counter() - began, count


def test_search_speed(tmp_path: Path) -> None:
    path = tmp_path / "bench.sqlite3"
    seconds, count = build(path)
    size_mb = path.stat().st_size / 1e6
    print(f"\nbuilt {CONVERSATIONS:,} conversations / {count:,} messages in {seconds:.1f} s "
          f"({size_mb:.0f} MB)")
    assert count == CONVERSATIONS * MESSAGES_PER_CONVERSATION
    queries = [
        "walrus", "arctic ocean", "python thread", "recipe", "invoice budget", "violin",
        "chess", '"coffee bread"', "kernel compile", "garden", "export history",
        "poem", "mountain river", "keyboard", "zzzznotthere", "the", "AND", '"foo',
    ]
    prefixed = ["tra", "summ", "keyb"]  # search-as-you-type (prefix=True)
    # Words of the generated vocabulary at several frequency levels.
    rng = random.Random(1234)
    words = vocabulary(rng)
    queries += [words[i] for i in (0, 3, 20, 100, 500, 2000, 3900)]
    queries += [f"{words[10]} {words[200]}", f"{words[50]} {words[1500]}"]
    prefixed += [w[:4] for w in (words[5], words[300])]
    queries += [q for q in prefixed if q not in queries]
    timings: dict[str, float] = {}
    hits: dict[str, int] = {}
    with Store.open(path) as store:
        store.search("warm up")
        for query in queries:
            samples = []
            for _ in range(3):
                began = time.perf_counter()
                results = store.search(query, limit=50, prefix=query in prefixed)
                samples.append((time.perf_counter() - began) * 1000)
            timings[query] = statistics.median(samples)
            hits[query] = len(results)
    for query in queries:
        mark = " (prefix)" if query in prefixed else ""
        print(f"  {query!r:<28} {timings[query]:7.1f} ms  {hits[query]:3d} hits{mark}")
    values = sorted(timings.values())
    median = statistics.median(values)
    p90 = values[int(len(values) * 0.9)]
    print(f"search over {count:,} messages: median {median:.1f} ms, p90 {p90:.1f} ms, "
          f"max {values[-1]:.1f} ms ({len(queries)} queries, limit 50)")
    assert hits["walrus"] == 50 and hits["zzzznotthere"] == 0
    assert median < TARGET_MEDIAN_MS
