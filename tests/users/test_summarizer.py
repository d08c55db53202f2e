"""User summaries: the extractive summarizer's prose, and the OpenAI-compatible LLM provider."""

from __future__ import annotations

import json
import re
import socket
from datetime import timedelta

import pytest

from core import clock
from memories.models import Memory
from memories.services import MemoryInput, memory_create_batch
from tests.fakes import PROFILE, FakeChat, serve
from tests.seed import SEED_FACTS
from users import summarizer
from users.models import UserSummary
from users.summarizer import ExtractiveSummarizer, as_sentence, summarize, third_person


@pytest.fixture
def user_123(add) -> list[str]:
    return [add(content, tags=tags, user_id="user_123")["id"] for content, tags in SEED_FACTS]


def seed(user_id: str, contents: list[str]) -> list[str]:
    results = memory_create_batch(items=[MemoryInput(c, user_id=user_id) for c in contents])
    return [str(result.memory.pk) for result in results]


def last_seen(memory_id: str, *, days_ago: float) -> None:
    when = clock.now() - timedelta(days=days_ago)
    Memory.objects.filter(pk=memory_id).update(last_seen_at=when)


def salience(memory_id: str, value: float) -> None:
    Memory.objects.filter(pk=memory_id).update(salience=value)


def words(text: str) -> int:
    return len(text.split())


def sentences(text: str) -> list[str]:
    return re.split(r"(?<=[.!?…])\s+", text)


# --- Extractive ----------------------------------------------------------------------------


def test_seed_page_user_is_described_in_sentences(user_123, settings):
    summary = summarize("user_123")

    assert (summary.provider, summary.fallback_reason, summary.memory_count) == (
        "extractive",
        "",
        4,
    )
    for fact in ("dark mode in applications", "Python course", "React tutorial", "TypeScript"):
        assert fact in summary.text
    assert all(s.startswith("The user ") and s.endswith(".") for s in sentences(summary.text))
    assert not re.search(r"\d|memories", summary.text)  # prose, not a tally
    assert words(summary.text) <= settings.OM_SUMMARY_MAX_LENGTH


def test_summary_groups_facts_by_theme_most_recent_theme_first(user_123):
    dark_mode, python, react, typescript = user_123
    for memory_id, days_ago in ((dark_mode, 0), (typescript, 1), (python, 2), (react, 3)):
        last_seen(memory_id, days_ago=days_ago)

    assert summarize("user_123").text == (
        "The user prefers dark mode in applications. "
        "The user prefers TypeScript over JavaScript. "
        "The user completed Python course and React tutorial."
    )


@pytest.mark.parametrize(
    ("content", "sentence"),
    [
        ("User prefers dark mode in applications", "The user prefers dark mode in applications."),
        ("the user  lives in Lisbon", "The user lives in Lisbon."),
        ("User's favourite editor is Vim", "The user's favourite editor is Vim."),
        ("Completed React tutorial", "The user completed React tutorial."),
        ("Prefers TypeScript over JavaScript", "The user prefers TypeScript over JavaScript."),
        ("Usually drinks coffee before 9am", "The user usually drinks coffee before 9am."),
        ("Usually configures a formatter first", "The user usually configures a formatter first."),
        ("Sometimes things go wrong", "Sometimes things go wrong."),
        ("Is allergic to peanuts!", "The user is allergic to peanuts!"),
        ("Paris is lovely in spring", "Paris is lovely in spring."),
        ("James likes jazz", "James likes jazz."),
        ("Works are on display at the Tate", "Works are on display at the Tate."),
        ("iPhone battery lasts two days", "iPhone battery lasts two days."),
        ("python is their first language", "Python is their first language."),
        ("Is the demo on Friday?", "Is the demo on Friday?"),
    ],
)
def test_each_memory_reads_as_a_sentence_without_mangling(content, sentence):
    assert as_sentence(content) == sentence


@pytest.mark.parametrize(
    ("sentence", "rewritten"),
    [
        ("I love my dog", "The user loves their dog"),
        ("I'm moving to Oslo", "The user is moving to Oslo"),
        (
            "I've been painting since I was a kid",
            "The user has been painting since they were a kid",
        ),
        ("I just started a pottery class", "The user just started a pottery class"),
        ("I usually watch films", "The user usually watches films"),
        ("I went camping with my kids", "The user went camping with their kids"),
        ("I'll call them", "The user will call them"),
        ("My sister lives in Oslo", "The user's sister lives in Oslo"),
        ("I gotta run", "The user has to run"),
        ("I reckon it works", "They reckon it works"),
        ("Painting is my escape", "Painting is their escape"),
        ("Paris is lovely", "Paris is lovely"),
    ],
)
def test_first_person_statements_are_rewritten_about_the_user(sentence, rewritten):
    assert third_person(sentence) == rewritten


def test_cap_is_never_exceeded_and_the_text_ends_on_a_whole_sentence(db, settings):
    settings.OM_SUMMARY_MAX_LENGTH = 30
    seed(
        "verbose",
        [
            f"User spent week {i} walking the long coastal path from the northern fishing "
            "village to the old lighthouse and back again"
            for i in range(60)
        ],
    )

    text = summarize("verbose").text

    assert 0 < words(text) <= 30
    assert text.endswith(".") and "…" not in text


def test_a_single_memory_longer_than_the_cap_is_cut_with_an_ellipsis(db, settings):
    settings.OM_SUMMARY_MAX_LENGTH = 10
    seed("rambler", ["User " + " ".join(f"word{i}" for i in range(40))])

    text = summarize("rambler").text

    assert words(text) == 10
    assert text.startswith("The user word0") and text.endswith("…")


def test_near_identical_memories_appear_once(db):
    seed(
        "u1",
        [
            "User prefers dark mode",
            "user prefers dark mode!",
            "The user prefers  dark-mode.",
            "Prefers dark mode",
            "User likes green tea",
        ],
    )

    text = summarize("u1").text

    assert text.casefold().count("dark") == 1
    assert "green tea" in text


def test_memories_without_a_vector_of_the_usual_model_are_still_summarised(db):
    ids = seed(
        "mixed",
        [
            "User prefers dark mode",
            "User likes green tea",
            "User plays chess on Sundays",
            "User collects vinyl records",
        ],
    )
    # One awaiting re-embedding under another model, one never embedded: each is then
    # similar only to itself.
    Memory.objects.filter(pk=ids[2]).update(embedding_model="an-older-model")
    Memory.objects.filter(pk=ids[3]).update(embedding=None)

    text = summarize("mixed").text

    for fact in ("dark mode", "green tea", "chess", "vinyl"):
        assert fact in text


def test_same_memories_give_the_same_text(db, settings):
    settings.OM_SUMMARY_MAX_LENGTH = 40
    # One batch: equal salience and last_seen_at, so only the tie-break orders them.
    seed("twin", [f"User has hobby number {i} in the garden shed" for i in range(50)])

    first, second = summarize("twin").text, summarize("twin").text

    assert first == second
    assert words(first) <= 40


def test_salience_and_recency_decide_what_fits(db, settings):
    settings.OM_SUMMARY_MAX_LENGTH = 16
    important, stale, *_, trivial = seed(
        "ranked",
        [
            "User is allergic to shellfish",
            "User lives on a houseboat in Utrecht",
            "User works night shifts at a hospital",
            "User has a cat called Miso",
            "User is learning the cello",
            "User once saw a comet",
        ],
    )
    salience(important, 1.0)
    salience(stale, 0.6)
    last_seen(stale, days_ago=365)  # 0.6 * exp(-0.005 * 365) ≈ 0.1
    salience(trivial, 0.05)  # the newest memory, but unimportant

    text = summarize("ranked").text

    assert text.startswith("The user is allergic to shellfish.")
    assert "comet" not in text and "houseboat" not in text
    assert words(text) <= 16


def test_other_users_memories_never_appear(user_123):
    seed("user_999", ["User collects rare orchids", "User prefers light mode everywhere"])
    salience(Memory.objects.get(content="User collects rare orchids").pk, 1.0)

    summary = summarize("user_123")

    assert "orchids" not in summary.text and "light mode" not in summary.text
    assert summary.memory_count == 4


def test_summary_takes_two_queries_whatever_the_number_of_memories(db, django_assert_num_queries):
    seed("busy", [f"User visited museum number {i}" for i in range(300)])

    # The memories, then the vectors and tags of the candidates.
    with django_assert_num_queries(2):
        summarize("busy")


def test_a_long_history_is_ranked_from_its_most_important_memories(db, monkeypatch):
    # Past RANKED_MEMORIES the database picks the most important memories first (a user with
    # 200,000 was read whole for every summary): the same ones, in the same order, as
    # ranking the whole history, ages counted from the newest memory even when it is not
    # among them. Two sectors, so that a wrong "newest" would reorder them.
    contents = [
        f"I feel so happy about concert number {i}" if i % 2 else f"User lives near hall {i}"
        for i in range(40)
    ]
    ids = seed("long", contents)
    for i, memory_id in enumerate(ids):
        salience(memory_id, 0.9 - i / 50)
        last_seen(memory_id, days_ago=(i * 37) % 90)
    salience(ids[-1], 0.05)
    last_seen(ids[-1], days_ago=0)  # the newest, and too unimportant to be chosen
    whole, _ = summarizer._ranked_memories("long")

    monkeypatch.setattr(summarizer, "RANKED_MEMORIES", 10)
    top, count = summarizer._ranked_memories("long")

    assert count == 40
    assert [(m.id, m.importance) for m in top] == [(m.id, m.importance) for m in whole[:10]]
    assert ids[-1] not in {str(m.id) for m in top}
    assert summarize("long").memory_count == 40


# --- LLM -----------------------------------------------------------------------------------


@pytest.fixture
def llm(settings):
    FakeChat.calls = []
    FakeChat.script = [{"content": PROFILE}]
    server = serve(FakeChat)
    settings.OM_SUMMARIZER = "llm"
    settings.OM_LLM_BASE_URL = f"http://127.0.0.1:{server.server_port}/v1"
    settings.OM_LLM_MODEL = "tiny-chat"
    settings.OM_LLM_API_KEY = "sk-test"
    settings.OM_LLM_TIMEOUT = 2.0
    settings.OM_LLM_ATTEMPTS = 2
    yield FakeChat
    server.shutdown()
    server.server_close()


def prompt_lines(call) -> list[str]:
    _, _, body = call
    prompt = body["messages"][-1]["content"]
    return [line[2:] for line in prompt.splitlines() if line.startswith("- ")]


def test_llm_request_sends_the_most_salient_memories_within_budget(db, llm, settings):
    settings.OM_LLM_INPUT_TOKENS = 50
    settings.OM_SUMMARY_MAX_LENGTH = 60
    contents = [f"User memory {i} is about topic {i} and nothing else" for i in range(12)]
    ids = seed("user_123", contents)
    for rank, memory_id in enumerate(ids):
        salience(memory_id, 0.9 - rank * 0.05)  # memory 0 matters most
    seed("user_999", ["User collects rare orchids"])

    summary = summarize("user_123")

    [(path, auth, body)] = llm.calls
    assert (path, auth) == ("/v1/chat/completions", "Bearer sk-test")
    assert body["model"] == "tiny-chat" and body["temperature"] == 0
    assert 60 <= body["max_tokens"] <= 3 * 60
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    sent = prompt_lines(llm.calls[0])
    assert sent == contents[:5]  # 10 words each: five fit in 50
    assert "orchids" not in json.dumps(body)
    assert (summary.provider, summary.text, summary.memory_count) == ("llm", PROFILE, 12)


def test_llm_without_a_key_sends_no_authorization_header(llm, settings, user_123):
    settings.OM_LLM_API_KEY = ""

    summarize("user_123")

    assert llm.calls[0][1] is None


def test_llm_text_is_cut_to_the_cap_at_a_sentence_boundary(llm, settings, user_123):
    settings.OM_SUMMARY_MAX_LENGTH = 25

    summary = summarize("user_123")

    assert summary.provider == "llm"
    assert summary.text == (
        "The user is a web developer who prefers dark mode and TypeScript. "
        "They have completed courses in Python and React."
    )


def test_llm_is_used_after_a_failed_first_attempt(llm, user_123):
    llm.script = [{"status": 500}, {"content": PROFILE}]

    summary = summarize("user_123")

    assert len(llm.calls) == 2
    assert (summary.provider, summary.text, summary.fallback_reason) == ("llm", PROFILE, "")


@pytest.mark.parametrize(
    ("step", "reason"),
    [
        ({"status": 503}, "llm: HTTP 503 (3 attempts)"),
        ({"content": "   "}, "llm: empty response (3 attempts)"),
        ({"raw": b"<html>gateway</html>"}, "llm: invalid response (3 attempts)"),
        ({"sleep": 1.0}, "llm: timed out after 0.2 s (3 attempts)"),
    ],
    ids=["server-error", "empty", "not-json", "timeout"],
)
def test_llm_that_keeps_failing_falls_back_to_extractive(llm, settings, user_123, step, reason):
    settings.OM_LLM_ATTEMPTS = 3
    settings.OM_LLM_TIMEOUT = 0.2
    llm.script = [step]

    summary = summarize("user_123")

    assert len(llm.calls) == 3
    assert (summary.provider, summary.fallback_reason) == ("extractive", reason)
    expected = ExtractiveSummarizer(max_words=settings.OM_SUMMARY_MAX_LENGTH)
    assert summary.text == expected.summarize("user_123").text
    assert "TypeScript" in summary.text


def test_llm_rejecting_the_request_is_not_retried(llm, user_123):
    llm.script = [{"status": 401}]

    summary = summarize("user_123")

    assert len(llm.calls) == 1
    assert (summary.provider, summary.fallback_reason) == ("extractive", "llm: HTTP 401")


def test_unreachable_llm_falls_back(settings, user_123):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.OM_SUMMARIZER = "llm"
    settings.OM_LLM_BASE_URL = f"http://127.0.0.1:{port}/v1"
    settings.OM_LLM_ATTEMPTS = 1

    summary = summarize("user_123")

    assert summary.provider == "extractive"
    assert summary.fallback_reason.startswith("llm: unreachable")


def test_regenerate_endpoint_returns_the_llm_text(llm, api, user_123):
    response = api.post("/users/user_123/summary/regenerate")

    assert response.status_code == 200
    assert response.json()["summary"] == PROFILE
    stored = UserSummary.objects.get(user_id="user_123")
    assert (stored.provider, stored.fallback_reason) == ("llm", "")


def test_regenerate_endpoint_records_the_fallback(llm, api, user_123):
    llm.script = [{"status": 500}]

    body = api.post("/users/user_123/summary/regenerate").json()

    assert "TypeScript" in body["summary"]
    stored = UserSummary.objects.get(user_id="user_123")
    assert (stored.provider, stored.fallback_reason) == ("extractive", "llm: HTTP 500 (2 attempts)")
