"""Live deployments for tests: gunicorn, Celery worker and beat as real processes."""

from __future__ import annotations

import contextlib
import os
import shlex
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from django.db import connection

from openmemory import OpenMemory
from openmemory.client import OpenMemoryError

ROOT = Path(__file__).resolve().parents[1]
REDIS_URL = os.environ.get("OM_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
API_KEY = "deploy-key"


def missing_service(problem: str) -> NoReturn:
    """A test needs something this machine lacks: skipped with `problem` as the reason,
    except in CI (CI=true), where a missing service is a failure."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {problem}")
    pytest.skip(problem)


def redis_problem() -> str | None:
    """Why the test Redis cannot be used, or None."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        return f"Redis at {REDIS_URL} is not reachable ({exc})"
    return None


def database_url() -> str:
    """The URL of the current test database, for processes that must share it."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    host, port = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
    return f"postgres://{user}@{host}:{port}/{db['NAME']}"


@contextlib.contextmanager
def fresh_database(directory: Path) -> Iterator[str]:
    """The URL of an empty, never migrated database of the test database's kind (a new
    PostgreSQL database on the same server, or a SQLite file in `directory`), dropped after."""
    if connection.vendor == "sqlite":
        yield f"sqlite:///{directory / 'fresh.sqlite3'}"
        return
    import psycopg
    from psycopg import sql

    db = connection.settings_dict
    name = f"{db['NAME']}_fresh_{uuid.uuid4().hex[:8]}"
    server = {
        "host": db.get("HOST") or "127.0.0.1",
        "port": db.get("PORT") or 5432,
        "user": db.get("USER") or "postgres",
        "password": db.get("PASSWORD") or None,
    }
    with psycopg.connect(**server, dbname="postgres", autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"postgres://{server['user']}@{server['host']}:{server['port']}/{name}"
    finally:
        with psycopg.connect(**server, dbname="postgres", autocommit=True) as admin:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            admin.execute(drop.format(sql.Identifier(name)))


def free_port() -> int:
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


def stop_processes(processes: list[subprocess.Popen]) -> None:
    """Stops them all at once (each takes a moment to shut down), killing any still running
    after 15 s: a loaded machine can keep beat saving its schedule past the wait; the test's
    checks have run by now, and a process left behind would hold the test database open for
    the next one."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


class Deployment:
    """gunicorn, Celery worker and beat processes sharing the test database and a private
    queue. Without CELERY_BROKER_URL in `env` tasks run in-process, as in `make run`."""

    def __init__(self, **env: str) -> None:
        self.port = free_port()
        base = {k: v for k, v in os.environ.items() if k != "CELERY_BROKER_URL"}
        self.env = {
            **base,
            "OM_CELERY_QUEUE": f"test-{uuid.uuid4().hex[:8]}",
            "DATABASE_URL": database_url(),
            "OM_API_KEY": API_KEY,
            **env,
        }
        self.processes: list[subprocess.Popen] = []
        self.stderr = None  # where the processes' stderr goes (None: the test's own)
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.client = OpenMemory(api_key=API_KEY, base_url=self.base_url)

    def _spawn(
        self, command: list[str], env: dict[str, str], *, migrate: bool = False
    ) -> subprocess.Popen:
        if migrate:
            # As the Makefile's run, worker and beat targets do: migrate, then start.
            migrate_first = f"{shlex.quote(sys.executable)} manage.py migrate --noinput -v0"
            command = ["sh", "-c", f'{migrate_first} && exec "$@"', "sh", *command]
        process = subprocess.Popen(command, cwd=ROOT, env={**self.env, **env}, stderr=self.stderr)
        self.processes.append(process)
        return process

    def start_server(self) -> None:
        self.launch_server()
        self.wait_until_serving(timeout=20)

    def launch_server(self, *, workers: int = 3, migrate: bool = False) -> None:
        """Starts gunicorn without waiting for it (with `migrate`, after `manage.py migrate`)."""
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        bind = f"127.0.0.1:{self.port}"
        options = ["--workers", str(workers), "--worker-class", "gthread", "--threads", "4"]
        command = [gunicorn, "openmemory.wsgi", "--bind", bind, *options]
        self._spawn([*command, "--log-level", "warning"], {}, migrate=migrate)

    def wait_until_serving(self, timeout: float) -> None:
        def healthy() -> bool:
            try:
                return self.client.health()["ok"]
            except OpenMemoryError as exc:
                return exc.status == 429  # /health is rate limited per address: it answers
            except Exception:
                return False

        assert wait_for(healthy, timeout=timeout), "gunicorn did not start"

    def _celery(self, *args: str, migrate: bool = False, **env: str) -> subprocess.Popen:
        command = [sys.executable, "-m", "celery", "-A", "openmemory", *args]
        return self._spawn([*command, "--loglevel=WARNING"], env, migrate=migrate)

    def start_worker(self, *, migrate: bool = False, **env: str) -> subprocess.Popen:
        options = ("--pool=solo", "--without-gossip", "--without-mingle")
        return self._celery("worker", *options, migrate=migrate, **env)

    def start_beat(self, *, migrate: bool = False, **env: str) -> subprocess.Popen:
        return self._celery("beat", "--max-interval", "1", "--pidfile=", migrate=migrate, **env)

    def stop(self) -> None:
        stop_processes(self.processes)
