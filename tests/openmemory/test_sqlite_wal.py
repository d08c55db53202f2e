"""On SQLite, a serving process checkpoints the WAL in a thread of its own, not inside commits."""

from __future__ import annotations

import os
import sqlite3
import threading
import time

import pytest
from django.db import connection

from core import wal
from core.write_queue import queued_write
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


def write_pages(pages: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE wal_probe (page blob)")
        cursor.executemany("INSERT INTO wal_probe VALUES (zeroblob(4000))", [()] * pages)
        cursor.execute("DROP TABLE wal_probe")


def test_a_round_copies_the_wal_into_the_database_and_leaves_a_small_wal_in_place(
    transactional_db, monkeypatch
):
    monkeypatch.setattr(wal, "RESET_FRAMES", 10**9)  # however much earlier tests wrote
    write_pages(100)

    busy, frames, done = wal.checkpoint()

    assert (busy, done) == (0, frames)
    assert frames >= 100
    assert os.path.getsize(connection.settings_dict["NAME"] + "-wal") > 0


def test_past_the_reset_threshold_a_round_empties_the_wal(transactional_db, monkeypatch):
    # Under steady writes a PASSIVE checkpoint never catches up, and SQLite starts the WAL
    # over only after one has: without this the WAL grew without end.
    monkeypatch.setattr(wal, "RESET_FRAMES", 50)
    write_pages(100)

    assert wal.checkpoint() == (0, 0, 0)
    assert os.path.getsize(connection.settings_dict["NAME"] + "-wal") == 0


def test_a_writer_at_work_puts_the_reset_off_until_the_wal_is_too_large(
    transactional_db, monkeypatch
):
    monkeypatch.setattr(wal, "RESET_FRAMES", 50)
    monkeypatch.setattr(wal, "FORCE_RESET_FRAMES", 10**9)
    write_pages(100)
    holding, done_writing = threading.Event(), threading.Event()

    def writer() -> None:
        with queued_write():
            holding.set()
            done_writing.wait(10)

    threading.Thread(target=writer).start()
    assert holding.wait(10)
    try:
        busy, frames, done = wal.checkpoint()  # the writer holds the turn: copy, no reset
        assert (busy, done) == (0, frames) and frames >= 100

        monkeypatch.setattr(wal, "FORCE_RESET_FRAMES", 50)
        forced: list[tuple[int, int, int]] = []
        waiting = threading.Thread(target=lambda: forced.append(wal.checkpoint()))
        waiting.start()
        time.sleep(0.3)
        assert forced == []  # in line behind the writer
    finally:
        done_writing.set()
    waiting.join(10)
    assert forced == [(0, 0, 0)]
    assert os.path.getsize(connection.settings_dict["NAME"] + "-wal") == 0


def test_a_database_file_that_is_gone_is_not_created_again_empty(tmp_path):
    # A test run's database dropped under a process whose thread still checkpoints it.
    gone = tmp_path / "dropped.sqlite3"

    with pytest.raises(sqlite3.OperationalError):
        wal.checkpoint(str(gone))

    assert not gone.exists()
