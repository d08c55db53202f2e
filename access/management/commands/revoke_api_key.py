"""manage.py revoke_api_key: revokes stored API keys by id or by their prefix."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from access.models import ApiKey
from access.services import api_key_revoke


class Command(BaseCommand):
    help = "Revoke an API key, given its id or the first characters of the key."

    def add_arguments(self, parser) -> None:
        parser.add_argument("key", help="the key's id, or its prefix (e.g. om_AbC123)")

    def handle(self, *args, key: str, **options) -> None:
        matches = ApiKey.objects.filter(pk=int(key)) if key.isdigit() else ApiKey.objects.none()
        if not matches.exists():
            matches = (
                ApiKey.objects.filter(prefix__startswith=key[:10]) if len(key) >= 6 else matches
            )
        if matches.count() != 1:
            raise CommandError(f"{matches.count()} keys match {key!r}; give the id instead")
        revoked = api_key_revoke(key_id=matches.get().pk)
        self.stdout.write(f"revoked key {revoked.pk} ({revoked.prefix}…)")
