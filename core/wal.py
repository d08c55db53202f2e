"""SQLite's WAL checkpoints, run by a thread of each serving process instead of inside commits."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import urllib.parse

from django.conf import settings

from core.write_queue import queued_write, sqlite_file

logger = logging.getLogger("openmemory")

_lock = threading.Lock()
_thread: threading.Thread | None = None

# Left to itself SQLite checkpoints inside whichever commit takes the WAL past 1,000 pages
# (wal_autocheckpoint): that commit copies the WAL's pages into the database file and syncs
# it before it returns, and, holding this machine's writer lock (core/write_queue.py)
# meanwhile, makes every queued writer wait too. Measured in-process at 20k memories, 400
# adds: p99 21-23 ms with those checkpoints, 7-12 ms without. So serving processes raise the
# commit-time threshold to a backstop (settings: OM_SQLITE_CHECKPOINT_SECONDS) and checkpoint
# here, on a connection of their own.
#
# A PASSIVE checkpoint alone never lets the WAL shrink under steady writes: SQLite starts the
# WAL over only when a checkpoint has copied every frame, and writers append while it copies
# (seen: a 518 MB WAL beside a 103 MB database after one benchmark). So once the WAL passes
# RESET_FRAMES a round also runs a TRUNCATE checkpoint, which copies the frames of the last
# moments and empties the WAL file, behind this machine's writer lock: taken only if no
# writer holds or awaits it, and waited for once the WAL passes FORCE_RESET_FRAMES. Waited
# for, it held 20-90 ms on the 2-core benchmark machine, which the writers queued behind it
# wait too: hence the quiet moment first.
RESET_FRAMES = 4_000  # about 16 MB of WAL with 4 KiB pages
FORCE_RESET_FRAMES = 16_000
# How long a TRUNCATE checkpoint waits for readers still on the old WAL (a query takes a few
# ms), holding the writer lock meanwhile; it gives up past that, and a later round retries.
READER_WAIT_MS = 50


def checkpoint(path: str | None = None) -> tuple[int, int, int]:
    """One checkpoint thread's round (run_round) on the default SQLite database, or on
    `path`, from a connection of its own."""
    path = path or sqlite_file()
    if path is None:
        raise ValueError("the default database is not a SQLite file")
    conn = _connect(path)
    try:
        return run_round(conn)
    finally:
        conn.close()


def _checkpoint(conn: sqlite3.Connection, mode: str = "PASSIVE") -> tuple[int, int, int]:
    try:
        busy, frames, done = conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
    except sqlite3.OperationalError:
        # Another process is checkpointing (the checkpoint lock is one per database).
        return (1, -1, -1)
    return (busy, frames, done)


def start() -> bool:
    """Starts this process's checkpoint thread, once, when the default database is a SQLite
    file and OM_SQLITE_CHECKPOINT_SECONDS is above 0. The WSGI module calls it, so that
    serving processes run one. Returns whether the thread runs."""
    global _thread
    path = sqlite_file()
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
    failing = False
    while True:
        time.sleep(interval)
        try:
            if conn is None:
                conn = _connect(path)
            run_round(conn)
            failing = False
        except Exception:
            # A database file removed or replaced under the server (a test run's database
            # dropped, a restore): reopen next round, and say so once, not twice a second.
            if not failing:
                logger.exception("SQLite checkpoint failed; retrying every %s s", interval)
            failing = True
            if conn is not None:
                conn.close()
            conn = None


def _connect(path: str) -> sqlite3.Connection:
    # mode=rw: a database file that is gone is an error here, never created again empty.
    # timeout=0: another process's checkpoint in progress means this one has nothing to do.
    uri = f"file:{urllib.parse.quote(path)}?mode=rw"
    return sqlite3.connect(uri, uri=True, timeout=0, isolation_level=None)


def run_round(conn: sqlite3.Connection) -> tuple[int, int, int]:
    """A checkpoint thread's round: a PASSIVE checkpoint, which copies what of the WAL no
    reader still needs into the database file without waiting for readers or writers; then,
    once the WAL has grown past RESET_FRAMES, a TRUNCATE one behind the writer lock, which
    copies the rest and empties the WAL file. Returns the last checkpoint's SQLite answer:
    (busy, WAL frames, frames checkpointed)."""
    result = _checkpoint(conn)
    if result[1] < RESET_FRAMES:
        return result
    with queued_write(wait=result[1] >= FORCE_RESET_FRAMES) as turn:
        if not turn:
            return result
        conn.execute(f"PRAGMA busy_timeout = {READER_WAIT_MS}")
        try:
            return _checkpoint(conn, "TRUNCATE")
        finally:
            conn.execute("PRAGMA busy_timeout = 0")
