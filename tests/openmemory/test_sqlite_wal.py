"""On SQLite, a serving process checkpoints the WAL in a thread of its own, not inside commits."""

from __future__ import annotations

import os
import time

import pytest
from django.db import connection

from core import wal
from tests.live import Deployment, fresh_database, wait_for

pytestmark = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="the WAL and its checkpoints are SQLite's"
)


def file_state(path: str) -> tuple[int, int]:
    # In WAL mode commits append to the -wal file; only a checkpoint writes the database file.
    stat = os.stat(path)
    return (stat.st_size, stat.st_mtime_ns)


def serve(**env: str) -> Deployment:
    deployment = Deployment(OM_EMBEDDED_SCHEDULER="false", **env)
    deployment.launch_server(workers=1, migrate=True)
    deployment.wait_until_serving(timeout=60)
    return deployment


def add_some(deployment: Deployment) -> None:
    for n in range(5):
        deployment.client.add(f"note {n}: prefers tea over coffee", user_id="wal-user")


def test_request_connections_leave_checkpoints_to_the_thread(db):
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_autocheckpoint")
        assert cursor.fetchone()[0] == 10_000


def test_a_server_copies_committed_adds_into_the_database_file_soon(tmp_path):
    with fresh_database(tmp_path) as url:
        path = url.removeprefix("sqlite:///")
        deployment = serve(DATABASE_URL=url, OM_SQLITE_CHECKPOINT_SECONDS="0.2")
        try:
            time.sleep(1)  # what start-up wrote is checkpointed by now
            before = file_state(path)

            add_some(deployment)

            assert wait_for(lambda: file_state(path) != before, timeout=10)
            assert deployment.client.get_user_memories("wal-user")["items"]
        finally:
            deployment.stop()


def test_without_the_thread_small_commits_stay_in_the_wal(tmp_path):
    # The control for the test above: what changed the file there was the thread.
    with fresh_database(tmp_path) as url:
        path = url.removeprefix("sqlite:///")
        deployment = serve(DATABASE_URL=url, OM_SQLITE_CHECKPOINT_SECONDS="0")
        try:
            time.sleep(1)
            before = file_state(path)

            add_some(deployment)
            time.sleep(1)

            assert file_state(path) == before
        finally:
            deployment.stop()


def test_checkpoint_copies_what_no_reader_needs(transactional_db, tmp_path):
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE wal_probe (n integer)")
        cursor.executemany("INSERT INTO wal_probe VALUES (%s)", [(n,) for n in range(100)])
        cursor.execute("DROP TABLE wal_probe")

    busy, frames, done = wal.checkpoint()

    assert busy == 0
    assert frames > 0
    assert done == frames
