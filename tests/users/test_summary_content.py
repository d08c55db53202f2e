"""What a user's summary says: the facts from a chat history, not its small talk, via HTTP."""

from __future__ import annotations

import re

import pytest

# A chat app storing each of the user's lines as it was said, with its own tag and label.
CHAT = [
    "[Mon 09:02] Sam: Hey Alex! Good to see you! How have you been?",
    "[Mon 09:03] Sam: Thanks so much, you're the best!",
    "[Mon 09:04] Sam: Wow, that's awesome! What did you think of it?",
    "[Mon 09:05] Sam: Haha, totally. Bye for now!",
    "[Mon 09:06] Sam: Yeah, I love climbing at the bouldering gym near my office.",
    "[Mon 09:07] Sam: Did you watch the game last night?",
    "[Tue 18:30] Sam: No worries! Sounds good to me.",
    "[Tue 18:31] Sam: Cool! My sister Priya is moving to Lisbon next month.",
    "[Tue 18:32] Sam: Haha, yeah. I'm planning a trip to Japan in April with my partner.",
    "[Tue 18:33] Sam: That's so great, Alex! Congrats!",
    "[Wed 08:15] Sam: Good morning! Have a great day!",
    "[Wed 08:16] Sam: Hope you had a nice weekend!",
]
FACTS = ("climbing", "Priya", "Japan")
SMALL_TALK = ("good to see", "bye", "thanks", "congrats", "good morning", "weekend", "?")


@pytest.fixture
def summary_of(api, add):
    def _summary_of(user_id: str, contents: list[str]) -> str:
        for content in contents:
            add(content, user_id=user_id)
        response = api.post(f"/users/{user_id}/summary/regenerate")
        assert response.status_code == 200, response.content
        body = api.get(f"/users/{user_id}/summary").json()
        assert body["summary"] == response.json()["summary"]
        return body["summary"]

    return _summary_of


def sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?…])\s+", text) if s]


def test_summary_states_the_facts_of_a_chat_and_none_of_its_small_talk(summary_of, settings):
    settings.OM_SUMMARY_MAX_LENGTH = 60

    text = summary_of("sam", CHAT)

    for fact in FACTS:
        assert fact in text, text
    for chatter in SMALL_TALK:
        assert chatter not in text.casefold(), text
    # Neither the chat's tags nor its speaker label are part of what the user is.
    assert "[" not in text and "Sam:" not in text
    assert len(text.split()) <= 60


def test_first_person_lines_read_as_statements_about_the_user(summary_of, settings):
    settings.OM_SUMMARY_MAX_LENGTH = 60

    text = summary_of("sam", CHAT)

    assert "The user loves climbing at the bouldering gym near their office." in sentences(text)
    assert "The user's sister Priya is moving to Lisbon next month." in sentences(text)
    assert "The user is planning a trip to Japan in April with their partner." in sentences(text)


def test_a_tight_cap_keeps_facts_before_chatter_and_is_never_exceeded(summary_of, settings):
    settings.OM_SUMMARY_MAX_LENGTH = 14

    text = summary_of("sam", CHAT)

    assert 0 < len(text.split()) <= 14
    assert any(fact in text for fact in FACTS), text
    assert not any(chatter in text.casefold() for chatter in SMALL_TALK), text


def test_the_same_history_gives_the_same_summary(summary_of, api):
    first = summary_of("sam", CHAT)
    # A second user with the very same lines, stored in the same order.
    second = summary_of("sam-twin", CHAT)

    assert api.post("/users/sam/summary/regenerate").json()["summary"] == first
    assert second == first


def test_repeated_facts_appear_once(summary_of, settings):
    settings.OM_SUMMARY_MAX_LENGTH = 80
    lines = [
        "I work as a nurse at the children's hospital.",
        "Yeah, I work as a nurse at the children's hospital!",
        "I work as a nurse at the children's hospital.",
        "My favourite food is ramen from the place on Elm Street.",
        "We adopted a beagle called Biscuit last spring.",
    ]

    text = summary_of("nurse", lines)

    assert text.count("nurse") == 1, text
    assert "ramen" in text and "Biscuit" in text


def test_a_user_who_only_asks_questions_still_gets_a_summary(summary_of):
    text = summary_of("curious", ["What time does the pool open?", "Is the gym open on Sunday?"])

    assert text  # nothing states a fact: the most important memory is quoted as it is
    assert text.endswith("?")
