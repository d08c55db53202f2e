"""manage.py export: writes memories as JSON Lines (one memory per line), with progress."""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from core.exceptions import ServiceError
from core.scope import ALL_USERS
from core.validation import clean_user_id
from memories.models import Memory
from memories.representation import memory_item
from memories.selectors import memories_for_export


class Command(BaseCommand):
    help = "Export memories (all, or one user's) as JSON Lines, the format `import` reads."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--user", help="only this user's memories")
        parser.add_argument("--output", "-o", help="file to write (default: standard output)")

    def handle(self, *args, user: str | None, output: str | None, **options) -> None:
        if user is not None:
            try:
                clean_user_id(user)
            except ServiceError as exc:
                raise CommandError(f"invalid --user: {exc.message}") from None
        scope = ALL_USERS if user is None else user
        total = (Memory.objects.all() if user is None else Memory.objects.for_user(user)).count()
        out = open(output, "w", encoding="utf-8") if output else sys.stdout  # noqa: SIM115
        try:
            for done, memory in enumerate(memories_for_export(user_id=scope), start=1):
                out.write(json.dumps(memory_item(memory), ensure_ascii=False) + "\n")
                if done % 1000 == 0 or done == total:
                    self.stderr.write(f"\rexported {done}/{total}", ending="")
        finally:
            if output:
                out.close()
        self.stderr.write(f"\rexported {total} memories" + " " * 20)
