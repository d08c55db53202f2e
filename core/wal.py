"""SQLite's WAL checkpoints, run by a thread of each serving process instead of inside commits."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time

from django.conf import settings

logger = logging.getLogger("openmemory")

_lock = threading.Lock()
_thread: threading.Thread | None = None

# Left to itself SQLite checkpoints inside whichever commit takes the WAL past 1,000 pages
# (wal_autocheckpoint): that commit copies the WAL's pages into the database file and syncs
# it before it returns, and, holding this machine's writer lock (core/write_queue.py)
# meanwhile, makes every queued writer wait too. Measured in-process at 20k memories, 400
# adds: p99 21-23 ms with those checkpoints, 7-12 ms without. So serving processes raise the
# commit-time threshold to a backstop (settings: OM_SQLITE_WAL_BACKSTOP_PAGES) and checkpoint
# here, every OM_SQLITE_CHECKPOINT_SECONDS, on a connection of their own.


def _database() -> str | None:
    """The SQLite file of the default database, or None (PostgreSQL, or in memory)."""
    db = settings.DATABASES["default"]
    if not db["ENGINE"].endswith("sqlite3"):
        return None
    name = str(db["NAME"])
    if name == ":memory:" or "mode=memory" in name:
        return None
    return name


def checkpoint(path: str | None = None) -> tuple[int, int, int]:
    """One PASSIVE checkpoint of the default SQLite database (or of `path`): copies what of
    the WAL no reader still needs into the database file, without waiting for readers or
    writers, so it never holds up a request. Returns SQLite's (busy, WAL frames, frames
    checkpointed); once the checkpoint has caught up, the next writer starts the WAL over."""
    path = path or _database()
    if path is None:
        raise ValueError("the default database is not a SQLite file")
    # timeout=0: another process's checkpoint in progress means this one has nothing to do.
    conn = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        return _checkpoint(conn)
    finally:
        conn.close()


def _checkpoint(conn: sqlite3.Connection) -> tuple[int, int, int]:
    try:
        busy, frames, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    except sqlite3.OperationalError:
        # Another process is checkpointing (the checkpoint lock is one per database).
        return (1, -1, -1)
    return (busy, frames, done)


def start() -> bool:
    """Starts this process's checkpoint thread, once, when the default database is a SQLite
    file and OM_SQLITE_CHECKPOINT_SECONDS is above 0. The WSGI module calls it, so that
    serving processes run one. Returns whether the thread runs."""
    global _thread
    path = _database()
    interval = settings.OM_SQLITE_CHECKPOINT_SECONDS
    if path is None or interval <= 0:
        return False
    with _lock:
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(
                target=_loop, args=(path, interval), name="openmemory-checkpoint", daemon=True
            )
            _thread.start()
    return True


def _loop(path: str, interval: float) -> None:
    conn: sqlite3.Connection | None = None
    while True:
        time.sleep(interval)
        try:
            if conn is None:
                conn = sqlite3.connect(path, timeout=0, isolation_level=None)
            _checkpoint(conn)
        except sqlite3.Error:
            # A database file replaced or removed under the server: reopen next round.
            logger.exception("SQLite checkpoint failed; retried in %s s", interval)
            if conn is not None:
                conn.close()
            conn = None
