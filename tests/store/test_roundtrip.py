"""Property: export → import → export reproduces any conversation tree exactly."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.store import Store
from tests.store.test_exchange import canonical

times = st.floats(min_value=0, max_value=1e10, allow_nan=False, allow_infinity=False)
text = st.text(max_size=60)
short = st.text(max_size=20)
scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**62), 2**62),
    st.floats(allow_nan=False, allow_infinity=False), short,
)
samplings = st.fixed_dictionaries(
    {},
    optional={
        "temperature": st.floats(0, 5),
        "top_p": st.floats(0, 1),
        "top_k": st.integers(0, 1000),
        "max_tokens": st.integers(1, 4096),
        "seed": st.one_of(st.none(), st.integers(0, 2**32 - 1)),
    },
)


@st.composite
def conversations(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(0, 12))
    messages: list[dict[str, Any]] = []
    for i in range(count):
        state = draw(st.sampled_from(["complete", "interrupted", "cancelled", "error"]))
        messages.append({
            "id": draw(st.integers(0, 10**9)) * 100 + i,  # unique, arbitrary order
            "parent": None if i == 0 or (draw(st.booleans()) and draw(st.booleans()))
            else messages[draw(st.integers(0, i - 1))]["id"],
            "role": draw(st.sampled_from(["system", "user", "assistant"])),
            "content": draw(text),
            "created_at": draw(times),
            "updated_at": draw(times),
            "state": state,
            "error": draw(st.one_of(st.none(), short)),
            "model_name": draw(st.one_of(st.none(), short)),
            "model_file": draw(st.one_of(st.none(), short)),
            "stats": draw(st.dictionaries(st.text(min_size=1, max_size=8), scalar, max_size=6)),
        })
    leaf = draw(st.one_of(st.none(), st.sampled_from(messages))) if messages else None
    return {
        "id": draw(st.integers(1, 1000)),
        "title": draw(short),
        "created_at": draw(times),
        "updated_at": draw(times),
        "system_prompt": draw(text),
        "sampling": draw(samplings),
        "model": draw(st.one_of(st.none(), short)),
        "pinned": draw(st.booleans()),
        "trashed_at": draw(st.one_of(st.none(), times)),
        "current_leaf": None if leaf is None else leaf["id"],
        "messages": messages,
    }


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(conversations(), min_size=1, max_size=3))
def test_export_import_round_trips_exactly(store: Store, convs: list[dict[str, Any]]) -> None:
    doc = {"format": "llama-desk-conversations", "version": 1, "conversations": convs}
    ids = store.import_json(json.loads(json.dumps(doc)))
    exported = store.export_json(ids, include_trashed=True)
    assert canonical(exported) == canonical(doc)
    # And once more from our own export (as a file would carry it).
    again = store.import_json(json.dumps(exported))
    assert canonical(store.export_json(again, include_trashed=True)) == canonical(doc)
    for new_id, conv in zip(ids, convs, strict=True):
        branch = store.current_branch(new_id)
        if conv["current_leaf"] is None:  # the newest leaf is shown (and continued)
            parents = {m["parent"] for m in conv["messages"]}
            leaves = [m for m in conv["messages"] if m["id"] not in parents]
            if not leaves:
                assert branch == []
            else:
                assert branch[-1].created_at == max(m["created_at"] for m in leaves)
                assert branch[-1].content in {m["content"] for m in leaves}
                assert branch[0].parent_id is None
        else:
            assert branch[-1].content == next(
                m["content"] for m in conv["messages"] if m["id"] == conv["current_leaf"]
            )
