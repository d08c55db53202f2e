"""The deployed shape: gunicorn enqueues summary work in Redis, a real Celery worker does it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
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
    """gunicorn and Celery worker processes sharing the test database and a private queue."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.env = {
            **os.environ,
            "CELERY_BROKER_URL": REDIS_URL,
            "OM_CELERY_QUEUE": f"test-{uuid.uuid4().hex[:8]}",
            "DATABASE_URL": _database_url(),
            "OM_API_KEY": "deploy-key",
        }
        self.processes: list[subprocess.Popen] = []
        self.client = OpenMemory(api_key="deploy-key", base_url=f"http://127.0.0.1:{self.port}")

    def _spawn(self, *command: str) -> None:
        self.processes.append(subprocess.Popen(command, cwd=ROOT, env=self.env))

    def start_server(self) -> None:
        gunicorn = Path(sys.executable).with_name("gunicorn")
        self._spawn(
            str(gunicorn),
            "openmemory.wsgi",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            "1",
            "--log-level",
            "warning",
        )

        def healthy() -> bool:
            try:
                return self.client.health()["ok"]
            except Exception:
                return False

        assert wait_for(healthy, timeout=20), "gunicorn did not start"

    def start_worker(self) -> None:
        self._spawn(
            sys.executable,
            "-m",
            "celery",
            "-A",
            "openmemory",
            "worker",
            "--pool=solo",
            "--loglevel=WARNING",
            "--without-gossip",
            "--without-mingle",
        )

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait(timeout=15)


@pytest.fixture
def deployment(transactional_db):
    problem = _redis_problem()
    if problem:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {problem}")
        pytest.skip(problem)
    deployed = Deployment()
    deployed.start_server()
    yield deployed
    deployed.stop()


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
