"""Scheduling without a broker: sweep, regenerate-all, beat's schedules, embedded scheduler."""

from __future__ import annotations

import math
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django_celery_beat.models import PeriodicTask

from memories.models import Memory
from memories.services import memory_create
from openmemory.celery import app as celery_app
from tests.callbacks import regenerations
from tests.fakes import PROFILE, FakeChat, serve
from tests.live import wait_for
from tests.plans import assert_uses_index
from users.models import UserSummary
from users.services import user_summaries_refresh_stale


def test_sweep_regenerates_stale_summaries_once(add, settings, django_capture_on_commit_callbacks):
    settings.OM_USER_SUMMARY_INTERVAL = 30
    for content, user_id in [("Likes tea", "u1"), ("Likes jazz", "u1"), ("Owns a bike", "u2")]:
        with django_capture_on_commit_callbacks(execute=True):
            add(content, user_id=user_id)  # u1's second add is below the interval: stale
    assert UserSummary.objects.get(user_id="u1").stale is True
    assert UserSummary.objects.get(user_id="u2").stale is False

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert user_summaries_refresh_stale() == 1

    assert len(callbacks) == 1
    summary = UserSummary.objects.get(user_id="u1")
    assert (summary.reflection_count, summary.stale, summary.pending_memories) == (2, False, 0)
    assert "jazz" in summary.summary
    with django_capture_on_commit_callbacks(execute=True):
        assert user_summaries_refresh_stale() == 0


def test_sweep_skips_summaries_already_queued(add, django_capture_on_commit_callbacks):
    add("Likes tea", user_id="u1")  # on_commit not run: a regeneration is queued, pending

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert user_summaries_refresh_stale() == 0
    assert callbacks == []


def test_health_counts_the_regenerations_queued_and_not_done(
    add, api, django_capture_on_commit_callbacks
):
    add("Likes tea", user_id="u1")  # on_commit not run: u1's first regeneration is queued
    with django_capture_on_commit_callbacks() as queued:
        add("Owns a bike", user_id="u2")
    assert api.get("/health").json()["summaries_queued"] == 2

    for callback in queued:  # the commit: u2's regeneration runs (no broker, no scheduler)
        callback()

    assert api.get("/health").json()["summaries_queued"] == 1


def test_health_counts_the_queue_from_its_index_not_every_summary(add, api):
    # Load balancers poll /health: at ten thousand users a scan of every summary per poll
    # would be the server's most frequent query.
    add("Likes tea", user_id="u1")
    with CaptureQueriesContext(connection) as queries:
        assert api.get("/health").json()["summaries_queued"] == 1
    (count,) = [q["sql"] for q in queries if "users_usersummary" in q["sql"]]

    assert_uses_index(count, (), "summary_queued", "users_usersummary")


def test_regenerate_all_enqueues_every_user(add, api, django_capture_on_commit_callbacks):
    for user in ("a", "b", "c"):
        add(f"Fact about {user}", user_id=user)
    add("Shared pool fact")

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/users/summaries/regenerate-all")

    assert response.json() == {"ok": True, "queued": 3}
    assert sorted(UserSummary.objects.values_list("user_id", "reflection_count")) == [
        ("a", 1),
        ("b", 1),
        ("c", 1),
    ]


def test_beat_schedules_are_in_the_database(db):
    tasks = dict(PeriodicTask.objects.values_list("task", "interval__every"))

    assert tasks["users.tasks.refresh_stale_summaries"] == 15
    assert tasks["memories.tasks.decay_salience"] == 60


# --- Embedded mode: a live gunicorn without a broker keeps the schedules ------------------


@pytest.fixture
def every_second(transactional_db):
    """Both of beat's periodic tasks every second (transactional tests flush the rows the
    migration made, so they are set here), with their clocks not yet started."""
    from django_celery_beat.models import IntervalSchedule

    schedule, _ = IntervalSchedule.objects.get_or_create(every=1, period="seconds")
    for name, task in [
        ("refresh stale user summaries", "users.tasks.refresh_stale_summaries"),
        ("decay memory salience", "memories.tasks.decay_salience"),
    ]:
        PeriodicTask.objects.update_or_create(
            name=name, defaults={"task": task, "interval": schedule, "last_run_at": None}
        )


def runs_of(task: str) -> int:
    return PeriodicTask.objects.get(task=task).total_run_count


def test_embedded_server_runs_the_sweep_and_decay_on_their_schedules(deploy, every_second):
    deployment = deploy(OM_SCHEDULER_POLL_SECONDS="0.2")
    om = deployment.client
    om.add("User prefers window seats", user_id="flyer")  # first memory: summarised soon
    # (on the scheduler's thread: the add does not wait for it)
    # (at least once: the GET may build it on demand while the scheduler's build runs)
    assert wait_for(lambda: om.get_user_summary("flyer")["reflection_count"] >= 1)
    first = om.get_user_summary("flyer")["reflection_count"]
    om.add("User collects airline menus", user_id="flyer")  # below the interval: stale
    paris = om.add("Paris is the capital of France")["id"]
    Memory.objects.filter(pk=paris).update(decayed_at=F("decayed_at") - timedelta(days=10))

    # The sweep picks up the stale summary: rebuilt with the second memory.
    assert wait_for(lambda: "airline menus" in om.get_user_summary("flyer")["summary"])
    assert om.get_user_summary("flyer")["reflection_count"] > first
    assert wait_for(lambda: om.get(paris)["salience"] < 0.5 * math.exp(-0.005 * 9))
    assert om.get(paris)["salience"] == pytest.approx(0.5 * math.exp(-0.005 * 10), rel=1e-3)

    # Three gunicorn workers poll five times a second, but each run is claimed by one.
    before, started = runs_of("memories.tasks.decay_salience"), time.monotonic()
    time.sleep(3)
    elapsed = time.monotonic() - started
    assert 1 <= runs_of("memories.tasks.decay_salience") - before <= elapsed + 1


@pytest.fixture
def slow_llm():
    """A chat-completions endpoint that takes a second per summary."""
    FakeChat.calls = []
    FakeChat.script = [{"sleep": 1, "content": PROFILE}]
    server = serve(FakeChat)
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()
    server.server_close()


def test_embedded_regenerate_all_answers_at_once_and_works_in_the_background(
    deploy, every_second, slow_llm
):
    for user in ("a", "b", "c", "d"):  # summarised here, by the extractive summarizer
        memory_create(content=f"User {user} likes sailing", user_id=user)
    deployment = deploy(OM_SUMMARIZER="llm", OM_LLM_BASE_URL=slow_llm, OM_LLM_TIMEOUT="5")

    started = time.monotonic()
    answer = deployment.client._request("POST", "/users/summaries/regenerate-all")

    assert answer == {"ok": True, "queued": 4}
    assert time.monotonic() - started < 2  # four summaries take at least four seconds
    for user in ("a", "b", "c", "d"):
        assert wait_for(lambda u=user: deployment.client.get_user_summary(u)["summary"] == PROFILE)
        assert deployment.client.get_user_summary(user)["reflection_count"] == 2


def test_an_add_creates_the_summary_row_with_the_models_defaults(add):
    # The add's bookkeeping is one hand-written upsert (users.services._COUNT_ADDED) that
    # lists every column: a field added to UserSummary must be added there too, with the
    # model's default, or this fails.
    add("Likes tea", user_id="u1")  # the summary is built after commit: not in this test

    created = UserSummary.objects.get(user_id="u1")
    expected = UserSummary(user_id="u1", pending_memories=1, memories_added=1, generation=1)
    for field in UserSummary._meta.concrete_fields:
        if field.name not in {"id", "created_at", "queued_at"}:
            assert getattr(created, field.name) == getattr(expected, field.name), field.name
    # A first memory makes the first summary due at once: it is queued.
    assert created.created_at is not None and created.queued_at is not None


def test_a_batch_over_several_users_counts_each_and_queues_those_due(
    add, api, settings, django_capture_on_commit_callbacks
):
    settings.OM_USER_SUMMARY_INTERVAL = 3
    add("Likes tea", user_id="u1")  # u1's first summary is queued by this add
    UserSummary.objects.filter(user_id="u1").update(queued_at=None, reflection_count=1)
    items = [
        {"content": "Likes jazz", "user_id": "u1"},
        {"content": "Owns a bike", "user_id": "u2"},
        {"content": "Likes chess", "user_id": "u1"},
        {"content": "Likes tea", "user_id": "u1"},  # a duplicate: not counted
        {"content": "Likes rain", "user_id": "u3"},
    ]

    with django_capture_on_commit_callbacks() as callbacks:
        assert api.post("/memory/add/batch", {"items": items}, format="json").status_code == 201

    summaries = {s.user_id: s for s in UserSummary.objects.all()}
    assert {u: (s.pending_memories, s.memories_added) for u, s in summaries.items()} == {
        "u1": (3, 3),
        "u2": (1, 1),
        "u3": (1, 1),
    }
    # u1 reached the interval; u2 and u3 got their first memory: all three are queued.
    assert all(s.queued_at is not None for s in summaries.values())
    assert len(regenerations(callbacks)) == 3


@pytest.mark.django_db(transaction=True)
def test_an_add_stands_when_the_broker_is_down_and_leaves_its_summary_to_the_sweep(
    add, settings, monkeypatch
):
    settings.CELERY_TASK_ALWAYS_EAGER = False  # a broker is configured...

    def down(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(celery_app, "send_task", down)  # ...and cannot be reached

    add("Plays the oboe in a wind quintet", user_id="oboist")

    summary = UserSummary.objects.get(user_id="oboist")
    assert (summary.stale, summary.queued_at) == (True, None)  # the sweep may queue it again
    assert Memory.objects.filter(user_id="oboist").count() == 1
