"""Queues SQLite write transactions of this machine's server processes behind one blocking
file lock, so concurrent writers wait their turn instead of polling SQLite's busy handler."""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator

from django.db import connection

# SQLite has one writer at a time. A writer that finds the database locked sleeps in its busy
# handler (1, 2, 5 ... up to 100 ms between tries) and is woken by nothing: with eight
# clients adding at once most of an add's time went into those sleeps, and unlucky ones
# waited seconds. A flock() is handed to the next waiter by the kernel the moment it is
# released. Threads of one process queue on a lock of their own first: flock() is held per
# open file, so two threads sharing this process's file would both pass it.
_threads = threading.Lock()
_file: tuple[int, int] | None = None  # (pid, fd): a forked gunicorn worker opens its own


def _lock_fd() -> int:
    global _file
    if _file is None or _file[0] != os.getpid():
        path = f"{connection.settings_dict['NAME']}-writers.lock"
        _file = (os.getpid(), os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    return _file[1]


def sqlite_file() -> str | None:
    """The default database's SQLite file; None on PostgreSQL or for a database in memory."""
    if connection.vendor != "sqlite":
        return None
    name = str(connection.settings_dict["NAME"])
    return None if name == ":memory:" or "mode=memory" in name else name


@contextlib.contextmanager
def queued_write(*, wait: bool = True) -> Iterator[bool]:
    """Around a write transaction about to open; yields whether this thread holds the
    machine's writer turn, which with `wait=False` it takes only if no writer holds or awaits
    it right now. A no-op on PostgreSQL (row locks let writers proceed side by side) and
    inside a transaction that is already open (it may hold the write lock: waiting here for a
    writer who waits for it would deadlock)."""
    if sqlite_file() is None or connection.in_atomic_block:
        yield True
        return
    if not _threads.acquire(blocking=wait):
        yield False
        return
    try:
        fd = _lock_fd()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        _threads.release()
