"""manage.py migrate, serialised: processes that start together take turns at migrating."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Callable, Iterator
from pathlib import Path

from django.core.management.commands.migrate import Command as DjangoMigrate
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

# The PostgreSQL advisory lock every migrate of this project takes: any fixed 64-bit number,
# the same in every process and release ("om_migra" in ASCII).
ADVISORY_LOCK_KEY = 0x6F6D5F6D69677261


def sqlite_lock_path(name: str) -> Path | None:
    """The lock file beside the SQLite database file `name`; None for an in-memory database."""
    name = str(name)
    if name == ":memory:" or name.startswith("file:"):
        return None
    return Path(f"{name}.migrate-lock")


@contextlib.contextmanager
def migration_lock(
    connection: BaseDatabaseWrapper, wait_message: Callable[[], None] | None = None
) -> Iterator[None]:
    """Held for a whole migrate run. Django takes no lock of its own: two processes that
    start `migrate` together on a fresh database both find the tables missing, both create
    them, and the second dies (MigrationSchemaMissing / duplicate key in
    pg_class_relname_nsp_index). With the lock the second waits, then reads the migration
    table afresh and finds nothing left to apply.

    PostgreSQL: a session-level advisory lock on this connection, which every app server
    (one or many machines) reaches; it is released with the session if the process dies.
    SQLite: an exclusive flock on a file beside the database. The database is a local file,
    so every process that can migrate it runs on this machine and sees the same lock; the
    kernel releases it when the process exits. (SQLite's own write lock is not enough: the
    "does the migration table exist" check runs outside any transaction.)"""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
            if not cursor.fetchone()[0]:
                if wait_message:
                    wait_message()
                cursor.execute("SELECT pg_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_LOCK_KEY])
        return
    path = None
    if connection.vendor == "sqlite":
        path = sqlite_lock_path(connection.settings_dict["NAME"])
    if path is None:  # an in-memory database belongs to this process alone
        yield
        return
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if wait_message:
                wait_message()
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Command(DjangoMigrate):
    help = (
        DjangoMigrate.help + " Processes that start together take turns: the later ones wait, "
        "then find nothing left to apply."
    )

    def handle(self, *args, **options):
        connection = connections[options["database"]]

        def waiting() -> None:
            self.stderr.write("another process is migrating this database; waiting for it")

        with migration_lock(connection, wait_message=waiting):
            return super().handle(*args, **options)
