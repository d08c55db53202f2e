"""The deployed shape: gunicorn enqueues summary work in Redis, a real Celery worker does it."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.live import REDIS_URL, Deployment, redis_problem, wait_for
from users.models import UserSummary


@pytest.fixture
def deploy(deploy):
    """Deployments whose gunicorn and Celery processes use the test Redis."""
    problem = redis_problem()
    if problem:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {problem}")
        pytest.skip(problem)

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
