"""manage.py reembed: moves every memory to the configured embedding provider (resumable)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from memories.embeddings import get_provider
from memories.services import memories_reembed


class Command(BaseCommand):
    help = "Re-embed memories made by another embedding model with the configured provider."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--batch", type=int, default=256, help="memories per transaction")

    def handle(self, *args, batch: int, **options) -> None:
        model = get_provider().model_id

        def progress(done: int, total: int) -> None:
            width = 30
            filled = width * done // max(total, 1)
            bar = "#" * filled + "." * (width - filled)
            self.stderr.write(f"\r[{bar}] {done}/{total} re-embedded with {model}", ending="")

        count = memories_reembed(batch=batch, on_progress=progress)
        self.stderr.write("")
        self.stdout.write(f"re-embedded {count} memories with {model}")
