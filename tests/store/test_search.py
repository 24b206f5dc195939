"""Full-text search: ranking, snippets, scoping, and user input that looks like FTS5 syntax."""

from __future__ import annotations

import pytest

from app.store import Store
from app.store.search import fts_query


@pytest.fixture
def filled(store: Store) -> Store:
    walrus = store.create_conversation(title="Walruses")
    store.add_user_message(walrus.id, "Where do walruses live?")
    store.add_message(walrus.id, "assistant", "Walruses live in the Arctic. Walrus walrus walrus.")
    cooking = store.create_conversation(title="Cooking")
    store.add_user_message(cooking.id, "How long should I boil an egg?")
    store.add_message(cooking.id, "assistant", "About nine minutes; a walrus would not know.")
    store.add_user_message(cooking.id, 'Quote: "foo AND bar" NEAR(x y) col:name *star')
    return store


def test_ranked_results_with_highlighted_snippets(filled: Store) -> None:
    hits = filled.search("walrus")
    assert len(hits) == 2  # porter does not stem "walruses" to "walrus"...
    assert len(filled.search("walrus", prefix=True)) == 3  # ...a prefix search finds it
    assert hits[0].conversation_title == "Walruses" and hits[0].role == "assistant"
    assert "[Walrus]" in hits[0].snippet and "[walrus]" in hits[0].snippet
    assert [h.rank for h in hits] == sorted(h.rank for h in hits)  # best (lowest bm25) first
    assert hits[-1].conversation_title == "Cooking"
    first = filled.get_message(hits[0].message_id)
    assert first.conversation_id == hits[0].conversation_id
    assert hits[0].created_at == first.created_at


def test_stemming_prefix_and_accents(filled: Store) -> None:
    assert len(filled.search("boiling")) == 1  # porter stemmer: boil
    assert filled.search("arct") == []
    assert len(filled.search("arct", prefix=True)) == 1  # search as you type
    conv = filled.create_conversation()
    filled.add_user_message(conv.id, "Crème brûlée recipe")
    assert len(filled.search("creme brulee")) == 1


def test_all_words_must_match_and_phrases(filled: Store) -> None:
    assert len(filled.search("walrus arctic")) == 1
    assert len(filled.search('"nine minutes"')) == 1
    assert filled.search('"minutes nine"') == []


def test_common_words_are_ranked_among_the_most_recent_matches(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.store import search

    monkeypatch.setattr(search, "RANK_WINDOW", 3)
    conv = store.create_conversation()
    ids = [store.add_user_message(conv.id, f"common word {i}").id for i in range(6)]
    hits = store.search("common")
    assert sorted(h.message_id for h in hits) == ids[-3:]
    assert len(store.search("common", conversation_id=conv.id)) == 6


def test_custom_marks_limit_and_scope(filled: Store) -> None:
    hits = filled.search("egg", marks=("<b>", "</b>"))
    assert hits and "<b>egg</b>" in hits[0].snippet
    assert len(filled.search("walrus", limit=2)) == 2
    walrus_id = filled.search("arctic")[0].conversation_id
    scoped = filled.search("walrus", conversation_id=walrus_id, prefix=True)
    assert {h.conversation_id for h in scoped} == {walrus_id} and len(scoped) == 2


@pytest.mark.parametrize(
    "query",
    ['"foo', "AND", "OR NOT", "NEAR(", "col:name", "*", "^", '""', "(", ")", "-", "a AND",
     "'; DROP TABLE messages; --", "\x00", "   ", "", "🦭", "foo\"bar", "NEAR(x y)", "{a b}:c"],
)
def test_syntax_in_user_input_never_raises(filled: Store, query: str) -> None:
    for prefix in (False, True):
        assert isinstance(filled.search(query, prefix=prefix), list)
    assert filled._conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 5


def test_operators_are_searched_as_words(filled: Store) -> None:
    hits = filled.search('"foo AND bar"')
    assert len(hits) == 1 and "[foo AND bar]" in hits[0].snippet
    assert len(filled.search("NEAR")) == 1
    assert len(filled.search("col:name")) == 1


def test_fts_query_quotes_every_term() -> None:
    assert fts_query("hello world") == '"hello" "world"'
    assert fts_query("hello world", prefix_last=True) == '"hello" "world"*'
    assert fts_query('say "good morning" AND', prefix_last=True) == '"say" "good morning" "AND"*'
    assert fts_query('"unclosed phrase', prefix_last=True) == '"unclosed phrase"'
    assert fts_query("*** ---") is None
    assert fts_query('x"y') == '"x y"'  # one token with punctuation inside: a phrase


def test_partial_replies_are_searchable_as_they_grow(store: Store) -> None:
    conv = store.create_conversation()
    user = store.add_user_message(conv.id, "tell me")
    msg = store.start_assistant(conv.id, user.id)
    writer = store.reply_writer(msg.id)
    writer.append("penguins ")
    writer.flush()
    assert [h.message_id for h in store.search("penguins")] == [msg.id]
    writer.append("and puffins")
    writer.flush()
    assert [h.message_id for h in store.search("puffins")] == [msg.id]
    assert store.integrity_check() == "ok"
    assert store._conn.execute(
        "INSERT INTO messages_fts(messages_fts, rank) VALUES ('integrity-check', 1)"
    ).fetchall() == []
