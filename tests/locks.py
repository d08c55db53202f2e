"""Row locks held by another connection, for tests of writers that must skip them."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from django.db import connections, transaction

from memories.models import Memory


@contextlib.contextmanager
def memory_held(memory_id: str) -> Iterator[None]:
    """While inside, another connection holds the memory's row lock, as a request editing,
    deleting or reinforcing it does (PostgreSQL row locks; needs a transactional test)."""
    locked, release = threading.Event(), threading.Event()

    def holder() -> None:
        try:
            with transaction.atomic():
                Memory.objects.select_for_update().get(pk=memory_id)
                locked.set()
                release.wait(30)
        finally:
            connections.close_all()

    thread = threading.Thread(target=holder)
    thread.start()
    assert locked.wait(10), "the holder did not get the row lock"
    try:
        yield
    finally:
        release.set()
        thread.join()
