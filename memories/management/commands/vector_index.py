"""manage.py vector_index: builds the approximate vector index in one pass, or drops it."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from memories.services import memories_build_vector_index, memories_drop_vector_index
from memories.vector_search import BUILD_MB_RANGE


class Command(BaseCommand):
    help = (
        "build: (re)build PostgreSQL's HNSW index in one pass, taking in every memory that "
        "awaits it (after a large import). drop: drop it before such an import, so that the "
        "load does not insert into it row by row. Adds and queries go on throughout; "
        "without the index, large scopes are ranked exactly (slower). No-op on SQLite."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("action", choices=["build", "drop"])
        parser.add_argument(
            "--memory-mb",
            type=int,
            default=None,
            help="maintenance_work_mem for the build (default: what the graph needs, "
            "about 2.4 KB a memory, up to 4096)",
        )

    def handle(self, *args, action: str, memory_mb: int | None, **options) -> None:
        low, high = BUILD_MB_RANGE
        # Checked before anything is dropped: PostgreSQL refusing the setting mid-build
        # would leave the index missing.
        if memory_mb is not None and not low <= memory_mb <= high:
            raise CommandError(f"--memory-mb must be between {low} and {high}")
        if connection.vendor != "postgresql":
            self.stdout.write(f"nothing to do on {connection.vendor}: every search is exact")
            return
        started = time.monotonic()
        if action == "drop":
            memories_drop_vector_index()
            self.stdout.write("dropped the vector index; `vector_index build` brings it back")
            return
        pending = memories_build_vector_index(memory_mb=memory_mb)
        self.stdout.write(
            f"built the vector index in {time.monotonic() - started:.1f} s "
            f"({pending} memories were awaiting it)"
        )
