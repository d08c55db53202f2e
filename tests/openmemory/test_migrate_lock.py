"""`manage.py migrate` started by several processes at once on a fresh database: all succeed."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from openmemory.management.commands.migrate import ADVISORY_LOCK_KEY, sqlite_lock_path
from tests.live import ROOT, fresh_database, wait_for

WAITING = "another process is migrating this database; waiting for it"


@pytest.fixture
def fresh(tmp_path) -> Iterator[str]:
    with fresh_database(tmp_path) as url:
        yield url


def start_migrate(url: str, log: Path) -> subprocess.Popen:
    """`manage.py migrate --noinput`, as `make run`, `make worker` and `make beat` run it."""
    return subprocess.Popen(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


def finish(processes: list[subprocess.Popen], logs: list[Path]) -> list[str]:
    for process in processes:
        process.wait(timeout=180)
    outputs = [log.read_text() for log in logs]
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output
    return outputs


def migration_table_exists(url: str) -> bool:
    if url.startswith("sqlite"):
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as db:
            query = "SELECT 1 FROM sqlite_master WHERE name = 'django_migrations'"
            return db.execute(query).fetchone() is not None
    import psycopg

    with psycopg.connect(url) as db:
        return db.execute("SELECT to_regclass('django_migrations')").fetchone()[0] is not None


@contextlib.contextmanager
def holding_the_lock(url: str) -> Iterator[None]:
    """Takes the lock every migrate takes, from this process."""
    if url.startswith("sqlite"):
        with open(sqlite_lock_path(url.removeprefix("sqlite:///")), "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        db.execute("SELECT pg_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
        yield


def test_three_processes_started_together_all_succeed_and_one_applies(fresh, tmp_path):
    # Without the lock this fails most runs on PostgreSQL: both create django_migrations or
    # the content types table, and the loser dies on a duplicate key in pg_class.
    logs = [tmp_path / f"migrate-{i}.log" for i in range(3)]
    processes = [start_migrate(fresh, log) for log in logs]
    outputs = finish(processes, logs)

    applied = [out for out in outputs if "Applying memories.0001_initial... OK" in out]
    assert len(applied) == 1, outputs
    assert sum("No migrations to apply." in out for out in outputs) == 2, outputs


def test_a_migrate_waits_for_the_one_under_way_then_finds_nothing_to_do(fresh, tmp_path):
    logs = [tmp_path / f"migrate-{i}.log" for i in range(2)]
    with holding_the_lock(fresh):
        processes = [start_migrate(fresh, log) for log in logs]
        both_wait = wait_for(lambda: all(WAITING in log.read_text() for log in logs), 60)
        assert both_wait, [log.read_text() for log in logs]
        assert all(process.poll() is None for process in processes)
        assert not migration_table_exists(fresh)  # nobody started behind the lock

    outputs = finish(processes, logs)
    assert migration_table_exists(fresh)
    assert sorted("No migrations to apply." in out for out in outputs) == [False, True]


def test_every_migrate_resolves_to_the_locking_command():
    # `manage.py migrate`, call_command("migrate") and pytest-django's test databases alike.
    from django.core.management import get_commands

    assert get_commands()["migrate"] == "openmemory"
