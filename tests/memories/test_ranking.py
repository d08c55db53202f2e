"""Hybrid ranking on small, real-looking cases (long chat turns, pronouns, dates, rare words):
each part of the score, per-user BM25, conversation context, min_score and the retrieval
boost. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.db import connection

from core import clock
from memories.lexical import K1, B, bm25
from memories.models import Memory
from memories.ranking import PARTS
from memories.selectors import memory_query
from tests.live import ROOT

# Turns of a conversation as an app would store them, one memory per turn.
CHAT = [
    "[1:56 pm on 8 May, 2023] Caroline: Hey Mel! Good to see you! How have you been?",
    "[1:56 pm on 8 May, 2023] Melanie: Hey Caroline! I'm swamped with the kids & work. "
    "What's up with you? Anything new?",
    "[1:56 pm on 8 May, 2023] Caroline: I went to a LGBTQ support group yesterday and it "
    "was so powerful.",
    "[1:56 pm on 8 May, 2023] Melanie: Wow, that's cool, Caroline! What happened that was so "
    "awesome? Did you hear any inspiring stories?",
    "[1:56 pm on 8 May, 2023] Caroline: The transgender stories were so inspiring! I was so "
    "happy and thankful for all the support.",
    "[1:56 pm on 8 May, 2023] Melanie: Did you ever think about what you'd like to do next?",
    "[1:56 pm on 8 May, 2023] Caroline: Yes! I'm keen on counseling and working in mental "
    "health, I'd love to support people going through the same.",
    "[1:56 pm on 8 May, 2023] Melanie: By the way, I painted that lake sunrise last year. "
    "It's special to me.",
    "[1:56 pm on 8 May, 2023] Caroline: Wow Mel, it's gorgeous! What made you paint it?",
    "[1:56 pm on 8 May, 2023] Melanie: Thanks! Painting is a fun way to express my feelings "
    "and relax after a long day.",
]


@pytest.fixture
def weigh(settings):
    """weigh(vector=..., lexical=..., ...) -> only the named parts count, without context."""

    def _weigh(**parts: float) -> None:
        settings.OM_HYBRID_WEIGHTS = {part: parts.get(part, 0.0) for part in PARTS}
        settings.OM_CONTEXT_WEIGHT = 0.0

    return _weigh


@pytest.fixture
def travel(monkeypatch):
    """travel(days=...) moves the server's clock forward."""
    offset = timedelta()
    real_now = clock.now

    def _travel(**delta) -> None:
        nonlocal offset
        offset += timedelta(**delta)

    monkeypatch.setattr(clock, "now", lambda: real_now() + offset)
    return _travel


@pytest.fixture
def chat(add) -> list[str]:
    """The CHAT turns stored in order for user "caroline-app"; their ids."""
    return [add(turn, user_id="caroline-app")["id"] for turn in CHAT]


def scores(matches: list[dict]) -> dict[str, float]:
    return {m["content"]: m["score"] for m in matches}


def test_hybrid_is_the_default_and_its_score_is_the_weighted_sum_of_the_parts(add, query, settings):
    add("Allergic to peanuts", user_id="u1")

    [match] = query("Allergic to peanuts", user_id="u1")

    assert settings.OM_RANKING == "hybrid"
    w = settings.OM_HYBRID_WEIGHTS
    # Same text: the best vector and the best word match (both parts 1), salience 0.5, seen
    # just now; alone, so no context adds to it.
    own = (w["vector"] + w["lexical"] + 0.5 * w["salience"] + w["recency"]) / sum(w.values())
    assert match["score"] == pytest.approx(own / (1 + settings.OM_CONTEXT_WEIGHT), abs=1e-4)


def test_bm25_uses_the_users_own_word_statistics(add):
    add("Adopted a greyhound named Pixel", user_id="u1")
    add("Walked the greyhound at the beach", user_id="u1")
    add("Bought a kettle", user_id="u1")
    before = bm25("greyhound kettle", user_id="u1").as_dict()
    for i in range(30):  # another user who talks about kettles all day
        add(f"Kettle number {i} descaled", user_id="u2")

    after = bm25("greyhound kettle", user_id="u1").as_dict()

    assert after == before
    # The textbook formula over u1's three memories: N = 3, lengths 4, 3, 2 (stop words out).
    n, average = 3, 9 / 3

    def idf(df: int) -> float:
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    def part(dl: int) -> float:
        return (K1 + 1) / (1 + K1 * (1 - B + B * dl / average))

    kettle = Memory.objects.get(content="Bought a kettle").pk
    assert before[kettle] == pytest.approx(idf(1) * part(2))
    greyhound = Memory.objects.get(content="Adopted a greyhound named Pixel").pk
    assert before[greyhound] == pytest.approx(idf(2) * part(4))


def test_bm25_within_a_narrower_scope_scores_only_it_with_the_users_statistics(add):
    add("Adopted a greyhound named Pixel", user_id="u1", tags=["pets"])
    add("Walked the greyhound at the beach", user_id="u1")
    add("Bought a kettle", user_id="u1", tags=["pets"])
    whole = bm25("greyhound kettle", user_id="u1").as_dict()
    pets = Memory.objects.for_user("u1").with_any_tag(["pets"])

    within = bm25("greyhound kettle", user_id="u1", within=pets).as_dict()

    # The same scores (document frequencies from all of u1's memories), for the pets only.
    assert within == {pk: score for pk, score in whole.items() if pets.filter(pk=pk).exists()}
    assert len(within) == 2
    assert bm25("greyhound", user_id="u1", within=pets.none()).as_dict() == {}


def test_a_rare_word_only_one_long_turn_holds_puts_it_first(chat, query):
    [best] = query("What did Melanie paint last year?", k=1, user_id="caroline-app")

    assert best["id"] == chat[7]  # "...I painted that lake sunrise last year..."


def test_a_question_about_a_date_finds_the_dated_turn(chat, query):
    ranked = query("When did Caroline go to the LGBTQ support group?", k=3, user_id="caroline-app")

    assert ranked[0]["id"] == chat[2]
    assert ranked[0]["content"].startswith("[1:56 pm on 8 May, 2023]")


def test_context_finds_the_answer_that_only_says_yes(chat, query, settings):
    """ "Yes! I'm keen on counseling..." answers a question asked in the turn before it; the
    words of the user's question are in that turn, not in the answer."""
    question = "Did she ever think about what she'd like to do next?"

    def scored() -> dict[str, float]:
        return {m["id"]: m["score"] for m in query(question, k=10, user_id="caroline-app")}

    settings.OM_CONTEXT_WEIGHT = 0.0
    alone = scored()
    # By its own words and meaning the answer is no better than a greeting.
    assert abs(alone[chat[6]] - alone[chat[0]]) < 0.05
    settings.OM_CONTEXT_WEIGHT = 0.7

    with_context = scored()

    assert list(with_context)[:2] == [chat[5], chat[6]]
    assert with_context[chat[6]] > with_context[chat[0]] + 0.2


def test_context_stops_at_the_gap_between_conversations(add, query, travel, settings):
    add("Did you ever think about what you'd like to do next?", user_id="u1")
    travel(hours=5)  # a later conversation: not the answer to that question
    add("Yes! Totally agree.", user_id="u1")
    settings.OM_CONTEXT_GAP_SECONDS = 3600

    found = scores(query("What would the user like to do next?", k=2, user_id="u1"))

    settings.OM_CONTEXT_GAP_SECONDS = 6 * 3600
    joined = scores(query("What would the user like to do next?", k=2, user_id="u1"))
    assert joined["Yes! Totally agree."] > found.get("Yes! Totally agree.", 0.0)


def test_a_memory_found_only_by_its_words_is_ranked(add, query, weigh, settings):
    for i in range(20):
        add(f"Stockholders meeting {i}", user_id="u1")
    target = add(
        "Ordered a Hasselblad from a little second-hand shop in Stockholm after months of saving",
        user_id="u1",
    )["id"]
    settings.OM_RANKING = "vector"
    assert query("Stockholm", k=1, user_id="u1")[0]["id"] != target  # the vectors miss it
    settings.OM_RANKING = "hybrid"
    settings.OM_HYBRID_CANDIDATES = 1  # one candidate from each search
    weigh(vector=1, lexical=1)

    [best] = query("Stockholm", k=1, user_id="u1")

    assert best["id"] == target


def test_recency_halves_every_half_life(add, query, weigh, travel, settings):
    add("Lives in Berlin", user_id="u1")
    travel(days=settings.OM_RECENCY_HALF_LIFE_DAYS)
    add("Lives in Lisbon", user_id="u1")
    weigh(recency=1)

    found = scores(query("Where does the user live?", user_id="u1"))

    assert found["Lives in Lisbon"] == pytest.approx(1.0, abs=1e-4)
    assert found["Lives in Berlin"] == pytest.approx(0.5, abs=1e-4)


def test_a_newer_statement_of_the_same_fact_wins_under_the_default_weights(
    add, query, travel, settings
):
    add("My favourite band is Bon Iver", user_id="u1")
    travel(days=200)
    add("My favourite band is Fleetwood Mac", user_id="u1")
    defaults = settings.OM_HYBRID_WEIGHTS
    settings.OM_HYBRID_WEIGHTS = {**defaults, "recency": 0.0}
    assert query("my favourite band", k=1, user_id="u1")[0]["content"].endswith("Bon Iver")
    settings.OM_HYBRID_WEIGHTS = defaults

    [first, second] = query("my favourite band", k=2, user_id="u1")

    assert first["content"] == "My favourite band is Fleetwood Mac"
    assert first["score"] > second["score"]


def test_reinforcement_raises_the_salience_part(add, api, query, weigh):
    plain = add("Takes the bus to work", user_id="u1")["id"]
    reinforced = add("Cycles to work", user_id="u1")["id"]
    api.post("/memory/reinforce", {"id": reinforced, "boost": 0.3}, format="json")
    weigh(salience=1)

    matches = query("commute", user_id="u1")

    assert [m["id"] for m in matches] == [reinforced, plain]
    assert [m["score"] for m in matches] == pytest.approx([0.8, 0.5])
    assert [m["salience"] for m in matches] == pytest.approx([0.8, 0.5])


def test_min_score_filters_on_the_hybrid_score(add, query):
    add("Allergic to peanuts", user_id="u1")
    add("Allergic to cats", user_id="u1")
    add("Plays the cello", user_id="u1")
    everything = query("allergic to peanuts", k=10, user_id="u1")
    threshold = (everything[0]["score"] + everything[1]["score"]) / 2

    kept = query("allergic to peanuts", k=10, user_id="u1", min_score=threshold)

    assert [m["content"] for m in kept] == ["Allergic to peanuts"]
    assert query("allergic to peanuts", user_id="u1", min_score=1.0) == []


def test_a_lone_weak_hit_keeps_a_low_score(add, query, settings):
    """Nothing shares a word with the query and nothing is close in meaning: the vector part
    is divided by a floor, not by the best (weak) similarity, so the hit does not look
    perfect (a defect of upstream OpenMemory, whose scores are rescaled per result set)."""
    add("Plays the cello", user_id="u1")

    [alone] = query("allergic to peanuts", user_id="u1")

    assert alone["score"] < 0.3


def test_words_never_match_across_users(add, query, weigh):
    add("Flew to Reykjavik for the conference", user_id="alice")
    add("Weekend plans: none", user_id="bob")
    add("Shared note about Reykjavik", user_id=None)
    weigh(lexical=1)

    assert [m["content"] for m in query("Reykjavik", user_id="bob")] == ["Weekend plans: none"]
    assert [m["content"] for m in query("Reykjavik", user_id="alice")] == [
        "Flew to Reykjavik for the conference"
    ]
    shared_pool = memory_query(query="Reykjavik", user_id=None)
    assert [m.memory.content for m in shared_pool] == ["Shared note about Reykjavik"]
    unscoped = {m["content"] for m in query("Reykjavik", k=10)}
    assert unscoped >= {"Flew to Reykjavik for the conference", "Shared note about Reykjavik"}


def test_user_ids_of_any_shape_get_their_own_word_matches(add, query, weigh):
    odd = ["alice@example.com", "u1", "U1", "75", "a|b:c=d+e-f.g_h"]
    for user_id in odd:
        add(f"Visited Reykjavik with {user_id}", user_id=user_id)
    weigh(lexical=1)

    for user_id in odd:
        found = query("Reykjavik", k=10, user_id=user_id)
        assert [m["content"] for m in found] == [f"Visited Reykjavik with {user_id}"]


def test_the_word_index_follows_edits_and_deletes(add, api):
    memory = add("Adopted a greyhound named Pixel", user_id="u1")["id"]

    def found(words: str) -> list[str]:
        found = bm25(words, user_id="u1")
        return [str(pk) for pk in found.as_dict()]

    assert found("greyhound") == [memory]
    api.patch(f"/memory/{memory}", {"content": "Adopted a whippet named Pixel"}, format="json")
    assert found("greyhound") == []
    assert found("whippet") == [memory]
    api.delete(f"/memory/{memory}")
    assert found("whippet pixel") == []


def test_a_batch_keeps_its_order_as_context(api, query):
    items = [{"content": turn, "user_id": "batch-user"} for turn in CHAT]
    api.post("/memory/add/batch", {"items": items}, format="json")

    positions = list(
        Memory.objects.for_user("batch-user").order_by("position").values_list("content", flat=True)
    )

    assert positions == CHAT


def test_the_query_count_does_not_grow_with_k(chat, api, django_assert_max_num_queries):
    body = {"query": "What did Melanie paint?", "filters": {"user_id": "caroline-app"}}
    for k in (1, 10):
        # See tests/users/test_users.py::test_query_count_does_not_grow_with_k.
        with django_assert_max_num_queries(10 + (connection.vendor == "postgresql")):
            api.post("/memory/query", {**body, "k": k}, format="json")


def test_vector_ranking_scores_by_cosine_alone(add, query, settings):
    settings.OM_RANKING = "vector"
    add("Allergic to peanuts", user_id="u1")

    [match] = query("Allergic to peanuts", user_id="u1")

    assert match["score"] == pytest.approx(1.0, abs=1e-5)


class TestRetrievalBoost:
    def test_off_by_default(self, add, api, query):
        memory = add("Speaks Portuguese", user_id="u1")["id"]

        query("Portuguese", user_id="u1")

        assert api.get(f"/memory/{memory}").json()["salience"] == 0.5

    def test_each_retrieval_adds_the_boost_and_leaves_last_seen_alone(
        self, add, api, query, settings
    ):
        settings.OM_RETRIEVAL_BOOST = 0.05
        memory = add("Speaks Portuguese", user_id="u1")
        other = add("Owns a red bicycle", user_id="u1")["id"]

        first = query("Portuguese", k=1, user_id="u1")
        query("Portuguese", k=1, user_id="u1")

        assert first[0]["id"] == memory["id"] and first[0]["salience"] == 0.5
        after = api.get(f"/memory/{memory['id']}").json()
        assert after["salience"] == pytest.approx(0.6)
        assert after["last_seen_at"] == first[0]["last_seen_at"]
        assert api.get(f"/memory/{other}").json()["salience"] == 0.5

    def test_the_context_endpoint_boosts_too(self, add, api, settings):
        settings.OM_RETRIEVAL_BOOST = 0.05
        memory = add("Speaks Portuguese", user_id="u1")["id"]

        api.post("/memory/context", {"user_id": "u1", "query": "languages"}, format="json")

        assert api.get(f"/memory/{memory}").json()["salience"] == pytest.approx(0.55)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OM_WEIGHT_LEXICAL": "-1"}, "OM_WEIGHT_LEXICAL must be >= 0, got -1"),
        ({"OM_WEIGHT_VECTOR": "nan"}, "OM_WEIGHT_VECTOR must be a finite number"),
        ({f"OM_WEIGHT_{part.upper()}": "0" for part in PARTS}, "are all 0"),
        ({"OM_RECENCY_HALF_LIFE_DAYS": "0"}, "OM_RECENCY_HALF_LIFE_DAYS must be > 0, got 0"),
        ({"OM_RANKING": "bm25"}, "OM_RANKING must be one of hybrid, vector"),
        ({"OM_CONTEXT_WEIGHT": "-0.5"}, "OM_CONTEXT_WEIGHT must be between 0 and 10"),
        ({"OM_CONTEXT_WINDOW": "x"}, "OM_CONTEXT_WINDOW must be an integer"),
        ({"OM_RETRIEVAL_BOOST": "2"}, "OM_RETRIEVAL_BOOST must be between 0 and 1, got 2"),
        ({"OM_DEFAULT_SALIENCE": "1.5"}, "OM_DEFAULT_SALIENCE must be between 0 and 1"),
        ({"OM_LLM_TIMEOUT": "inf"}, "OM_LLM_TIMEOUT must be a finite number"),
    ],
)
def test_bad_ranking_and_salience_settings_stop_the_server_at_start(env, message):
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode != 0
    assert message in result.stderr
