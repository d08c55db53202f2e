"""Overlapping summary regenerations, interleaved deterministically: no memory is ever lost."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from users import summarizer
from users.models import UserSummary
from users.services import user_summaries_refresh_stale


@pytest.fixture
def meanwhile(monkeypatch):
    """meanwhile(action): the next regeneration reads the memories, then runs `action()`
    before it stores its text, as a slow LLM lets other requests run. Regenerations started
    by `action` itself are not delayed."""
    real = summarizer.summarize

    def arm(action) -> None:
        started: list[str] = []

        def slow_summarize(user_id: str) -> summarizer.Summary:
            built = real(user_id)
            if not started:
                started.append(user_id)
                action()
            return built

        monkeypatch.setattr(summarizer, "summarize", slow_summarize)

    return arm


def add_cities(add, numbers: range) -> None:
    for i in numbers:
        add(f"Visited city number {i}", user_id="u1")


def test_an_older_regeneration_never_overwrites_a_newer_one(
    add, api, settings, meanwhile, django_capture_on_commit_callbacks
):
    settings.OM_USER_SUMMARY_INTERVAL = 100
    add_cities(add, range(10))

    def b_runs_between_adds() -> None:
        add_cities(add, range(10, 15))
        assert api.post("/users/u1/summary/regenerate").json()["reflection_count"] == 1  # B
        add_cities(add, range(15, 18))

    meanwhile(b_runs_between_adds)
    api.post("/users/u1/summary/regenerate")  # A: started after 10 adds, finishes last

    # A saw 10 memories; B saw 15 and stored its text first: A keeps B's, and the 3 adds
    # after B stay pending.
    summary = UserSummary.objects.get(user_id="u1")
    assert (summary.memory_count, summary.pending_memories, summary.stale) == (15, 3, True)
    assert summary.reflection_count == 1

    with django_capture_on_commit_callbacks(execute=True):
        assert user_summaries_refresh_stale() == 1
    summary.refresh_from_db()
    assert (summary.memory_count, summary.pending_memories, summary.stale) == (18, 0, False)


def test_regenerations_finishing_in_start_order_each_clear_only_what_they_saw(
    transactional_db, add, api, settings, meanwhile
):
    settings.OM_USER_SUMMARY_INTERVAL = 100
    add_cities(add, range(10))  # the first add's own regeneration ran at commit
    b_is_building, a_is_done = threading.Event(), threading.Event()

    def b_waits_for_a(user_id: str) -> summarizer.Summary:
        built = real_summarize(user_id)
        b_is_building.set()
        assert a_is_done.wait(10)
        return built

    def regenerate_b() -> None:
        try:
            APIClient().post("/users/u1/summary/regenerate")
        finally:
            connection.close()

    b = threading.Thread(target=regenerate_b)
    real_summarize = summarizer.summarize

    def b_starts_between_adds() -> None:
        add_cities(add, range(10, 15))
        summarizer.summarize = b_waits_for_a  # (restored by the fixture's monkeypatch)
        b.start()
        assert b_is_building.wait(10)
        add_cities(add, range(15, 18))

    meanwhile(b_starts_between_adds)
    api.post("/users/u1/summary/regenerate")  # A finishes first: it saw 10 memories
    summary = UserSummary.objects.get(user_id="u1")
    assert (summary.memory_count, summary.pending_memories, summary.stale) == (10, 8, True)

    a_is_done.set()
    b.join(10)
    summary.refresh_from_db()  # then B, which saw 15: the 3 adds after its start stay pending
    assert (summary.memory_count, summary.pending_memories, summary.stale) == (15, 3, True)
    assert summary.reflection_count == 3


def test_an_edit_during_a_regeneration_keeps_the_summary_from_being_served(
    add, api, meanwhile, django_capture_on_commit_callbacks
):
    memory = add("User lives in Berlin", user_id="u1")
    add("User likes tea", user_id="u1")
    api.post("/users/u1/summary/regenerate")

    def edit_then_b_regenerates() -> None:
        api.patch(f"/memory/{memory['id']}", {"content": "User lives in Lisbon"}, format="json")
        assert "Lisbon" in api.post("/users/u1/summary/regenerate").json()["summary"]  # B
        api.delete(f"/memory/{memory['id']}")

    meanwhile(edit_then_b_regenerates)
    api.post("/users/u1/summary/regenerate")  # A: built from Berlin, before the edit

    # Neither A (before the edit) nor B (before the delete) saw the delete: not served.
    summary = UserSummary.objects.get(user_id="u1")
    assert summary.invalidated and summary.stale
    assert "Berlin" not in summary.summary
    served = api.get("/users/u1/summary").json()["summary"]
    assert "Lisbon" not in served and "Berlin" not in served and "tea" in served


def test_a_queued_regeneration_skips_a_change_already_summarised_on_demand(
    add, api, django_capture_on_commit_callbacks
):
    from users.tasks import regenerate_user_summary

    # The add's regeneration waits in the queue (its on_commit has not run yet) while a
    # reader, on another app server, asks for the summary: it is built on demand.
    with django_capture_on_commit_callbacks() as queued:
        add("User lives in Porto", user_id="u1")
    assert api.get("/users/u1/summary").json()["reflection_count"] == 1

    for send in queued:  # the queued task reaches a worker: nothing changed since
        send()
    assert UserSummary.objects.get(user_id="u1").reflection_count == 1

    add("User likes green tea", user_id="u1")  # below the interval: stale, not queued
    regenerate_user_summary.delay("u1", only_if_stale=True)  # as the sweep sends it
    summary = UserSummary.objects.get(user_id="u1")
    assert (summary.reflection_count, summary.stale) == (2, False)
    regenerate_user_summary.delay("u1")  # the admin's "Regenerate summary" always rebuilds
    assert UserSummary.objects.get(user_id="u1").reflection_count == 3
