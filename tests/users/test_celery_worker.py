"""The deployed shape: gunicorn enqueues summary work in Redis, a real Celery worker does it."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from tests.fakes import PROFILE, FakeChat, serve
from tests.live import REDIS_URL, Deployment, missing_service, redis_problem, wait_for
from users.models import UserSummary


@pytest.fixture
def deploy(deploy):
    """Deployments whose gunicorn and Celery processes use the test Redis."""
    problem = redis_problem()
    if problem:
        missing_service(problem)

    def _deploy(**env: str) -> Deployment:
        return deploy(**{"CELERY_BROKER_URL": REDIS_URL, **env})

    return _deploy


@pytest.fixture
def deployment(deploy) -> Deployment:
    return deploy()


def reflections(user_id: str) -> int:
    summary = UserSummary.objects.filter(user_id=user_id).first()
    return summary.reflection_count if summary else 0


def test_first_memory_is_summarised_by_the_worker(deployment):
    om = deployment.client

    om.add("User prefers dark mode in applications", user_id="celery_user")

    # The add returned with the regeneration waiting in Redis: nothing ran in gunicorn.
    summary = UserSummary.objects.get(user_id="celery_user")
    assert (summary.reflection_count, summary.stale) == (0, True)

    deployment.start_worker()

    assert wait_for(
        lambda: UserSummary.objects.filter(user_id="celery_user", reflection_count=1).exists()
    ), "the worker did not regenerate the summary within 30 s"
    body = om.get_user_summary("celery_user")
    assert body["summary"] == "The user prefers dark mode in applications."
    assert body["reflection_count"] == 1


def test_interval_and_exactly_one_regeneration_under_20_concurrent_adds(deploy):
    deployment = deploy(OM_USER_SUMMARY_INTERVAL="20")
    deployment.start_worker()
    om = deployment.client
    om.add("User plays the cello", user_id="busy")
    assert wait_for(lambda: reflections("busy") == 1)

    # 20 adds at once reach the interval together: exactly one regeneration.
    with ThreadPoolExecutor(max_workers=20) as pool:
        list(pool.map(lambda i: om.add(f"Practised scale {i}", user_id="busy"), range(20)))
    assert wait_for(lambda: reflections("busy") == 2)
    time.sleep(2)  # a duplicate would have run by now
    summary = UserSummary.objects.get(user_id="busy")
    assert (summary.reflection_count, summary.pending_memories, summary.queued_at) == (2, 0, None)
    assert summary.memory_count == 21

    for i in range(19):
        om.add(f"Listened to concerto {i}", user_id="busy")
    time.sleep(1)
    assert reflections("busy") == 2
    om.add("Listened to concerto 19", user_id="busy")
    assert wait_for(lambda: reflections("busy") == 3)


def test_summaries_catch_up_after_a_broker_outage(deploy):
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    # gunicorn's broker is down (nothing listens on port 9): adds still succeed.
    deployment = deploy(CELERY_BROKER_URL="redis://127.0.0.1:9/0")
    started = time.monotonic()
    deployment.client.add("User prefers window seats", user_id="flyer")
    assert time.monotonic() - started < 5
    summary = UserSummary.objects.get(user_id="flyer")
    assert (summary.reflection_count, summary.stale, summary.queued_at) == (0, True, None)

    # The broker is back: beat's sweep (every second here) and a worker catch up.
    # (Earlier transactional tests flush the migration's schedule rows: set the row here.)
    every_second, _ = IntervalSchedule.objects.get_or_create(every=1, period="seconds")
    PeriodicTask.objects.update_or_create(
        name="refresh stale user summaries",
        defaults={"task": "users.tasks.refresh_stale_summaries", "interval": every_second},
    )
    deployment.start_worker(CELERY_BROKER_URL=REDIS_URL)
    deployment.start_beat(CELERY_BROKER_URL=REDIS_URL)

    assert wait_for(lambda: reflections("flyer") == 1), "the sweep did not catch up in 30 s"
    assert UserSummary.objects.get(user_id="flyer").stale is False


@pytest.fixture
def chat():
    """A chat-completions endpoint on loopback for the worker's LLM summarizer."""
    FakeChat.calls = []
    FakeChat.script = [{"content": PROFILE}]
    server = serve(FakeChat)
    yield FakeChat, f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()
    server.server_close()


def test_worker_retries_the_llm_then_falls_back_and_records_why(deploy, chat):
    fake, url = chat
    deployment = deploy(OM_SUMMARIZER="llm", OM_LLM_BASE_URL=url, OM_LLM_TIMEOUT="2")
    deployment.start_worker()

    fake.script = [{"status": 500}, {"content": PROFILE}]  # fails once, then answers
    deployment.client.add("User prefers dark mode in applications", user_id="lucky")
    assert wait_for(lambda: reflections("lucky") == 1)
    lucky = UserSummary.objects.get(user_id="lucky")
    assert (lucky.provider, lucky.summary, lucky.fallback_reason) == ("llm", PROFILE, "")
    assert len(fake.calls) == 2

    fake.script = [{"status": 503}]  # keeps failing
    deployment.client.add("User completed Python course", user_id="unlucky")
    assert wait_for(lambda: reflections("unlucky") == 1)
    unlucky = UserSummary.objects.get(user_id="unlucky")
    assert unlucky.provider == "extractive"
    assert unlucky.fallback_reason.startswith("llm: HTTP 503")
    assert "Python course" in unlucky.summary


def test_a_worker_killed_mid_task_loses_no_summary(deploy, chat):
    fake, url = chat
    fake.script = [{"sleep": 6, "content": PROFILE}, {"content": PROFILE}]
    deployment = deploy(
        OM_SUMMARIZER="llm",
        OM_LLM_BASE_URL=url,
        OM_LLM_TIMEOUT="20",
        OM_TASK_VISIBILITY_TIMEOUT="10",
    )
    first = deployment.start_worker()
    deployment.client.add("User prefers dark mode in applications", user_id="survivor")
    assert wait_for(lambda: len(fake.calls) == 1), "the first worker never started the task"

    first.send_signal(signal.SIGKILL)  # mid-task: the LLM has not answered yet
    first.wait(timeout=10)
    assert reflections("survivor") == 0
    deployment.start_worker()

    # The unacknowledged task comes back after the visibility timeout and completes.
    assert wait_for(lambda: reflections("survivor") == 1, timeout=60)
    assert UserSummary.objects.get(user_id="survivor").provider == "llm"


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="only PostgreSQL's vector index takes memories in later",
)
def test_the_worker_takes_new_memories_into_the_vector_index(deployment):
    om = deployment.client
    for i in range(3):
        om.add(f"Repairs vintage radio number {i}", user_id="radio_user")

    # The adds returned with the indexer's run waiting in Redis.
    assert om.health()["vectors_pending"] == 3

    deployment.start_worker()

    assert wait_for(lambda: om.health()["vectors_pending"] == 0), (
        "the worker did not index the new memories within 30 s"
    )
