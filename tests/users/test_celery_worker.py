"""The deployed shape: gunicorn enqueues summary work in Redis, a real Celery worker does it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.db import connection

from openmemory import OpenMemory
from users.models import UserSummary

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("OM_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _redis_problem() -> str | None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        return f"Redis at {REDIS_URL} is not reachable ({exc})"
    return None


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    return (
        f"postgres://{user}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


class Deployment:
    """gunicorn, Celery worker and beat processes sharing the test database and a private
    queue; each process gets the deployment's environment plus its own overrides."""

    def __init__(self, **env: str) -> None:
        self.port = _free_port()
        self.env = {
            **os.environ,
            "CELERY_BROKER_URL": REDIS_URL,
            "OM_CELERY_QUEUE": f"test-{uuid.uuid4().hex[:8]}",
            "DATABASE_URL": _database_url(),
            "OM_API_KEY": "deploy-key",
        }
        self.server_env = env
        self.processes: list[subprocess.Popen] = []
        self.client = OpenMemory(api_key="deploy-key", base_url=f"http://127.0.0.1:{self.port}")

    def _spawn(self, command: list[str], env: dict[str, str]) -> subprocess.Popen:
        process = subprocess.Popen(command, cwd=ROOT, env={**self.env, **env})
        self.processes.append(process)
        return process

    def start_server(self) -> None:
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        bind = f"127.0.0.1:{self.port}"
        options = ["--workers", "3", "--worker-class", "gthread", "--threads", "4"]
        self._spawn(
            [gunicorn, "openmemory.wsgi", "--bind", bind, *options, "--log-level", "warning"],
            self.server_env,
        )

        def healthy() -> bool:
            try:
                return self.client.health()["ok"]
            except Exception:
                return False

        assert wait_for(healthy, timeout=20), "gunicorn did not start"

    def _celery(self, *args: str, **env: str) -> subprocess.Popen:
        command = [sys.executable, "-m", "celery", "-A", "openmemory", *args]
        return self._spawn([*command, "--loglevel=WARNING"], {**self.server_env, **env})

    def start_worker(self, **env: str) -> subprocess.Popen:
        return self._celery("worker", "--pool=solo", "--without-gossip", "--without-mingle", **env)

    def start_beat(self, **env: str) -> subprocess.Popen:
        return self._celery("beat", "--max-interval", "1", "--pidfile=", **env)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait(timeout=15)


@pytest.fixture
def deploy(transactional_db):
    """deploy(**env) -> a Deployment with its gunicorn running; stopped after the test."""
    problem = _redis_problem()
    if problem:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {problem}")
        pytest.skip(problem)
    started: list[Deployment] = []

    def _deploy(**env: str) -> Deployment:
        started.append(Deployment(**env))
        started[-1].start_server()
        return started[-1]

    yield _deploy
    for deployed in started:
        deployed.stop()


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
