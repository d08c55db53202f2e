"""manage.py import: loads a JSON Lines export; idempotent by id, so it resumes when re-run."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from memories.serializers import ImportRecordSerializer
from memories.services import memories_import


class Command(BaseCommand):
    help = "Import memories from a JSON Lines export (ids already present are skipped)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", help="the .jsonl file written by `manage.py export`")
        parser.add_argument("--batch", type=int, default=500, help="memories per transaction")

    def handle(self, *args, path: str, batch: int, **options) -> None:
        records = list(self._read(path))
        created = skipped = 0
        for start in range(0, len(records), batch):
            # One transaction per batch: an interrupted import keeps what it stored, and
            # a second run skips those ids and carries on.
            result = memories_import(records=records[start : start + batch])
            created, skipped = created + result.created, skipped + result.skipped
            self.stderr.write(f"\rimported {start + result.created + result.skipped}"
                              f"/{len(records)}", ending="")  # fmt: skip
        self.stderr.write("")
        self.stdout.write(f"created {created}, skipped {skipped} (already present)")

    def _read(self, path: str):
        # Validate every line before writing anything: a bad file changes nothing.
        try:
            handle = open(path, encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc}") from None
        with handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    serializer = ImportRecordSerializer(data=json.loads(line))
                except ValueError as exc:
                    raise CommandError(f"line {number}: not JSON ({exc})") from None
                if not serializer.is_valid():
                    raise CommandError(f"line {number}: {serializer.errors}")
                yield serializer.validated_data
