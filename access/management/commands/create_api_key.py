"""manage.py create_api_key: makes an API key for one user (or an admin key) and shows it once."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from access.services import api_key_create
from core.exceptions import ServiceError
from core.validation import clean_user_id


class Command(BaseCommand):
    help = "Create an API key scoped to one user (--user ID) or to every user (--admin)."

    def add_arguments(self, parser) -> None:
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--user", help="the only user_id the key may reach")
        who.add_argument("--admin", action="store_true", help="a key that reaches every user")
        parser.add_argument("--name", default="", help="a label for operators")

    def handle(self, *args, user: str | None, admin: bool, name: str, **options) -> None:
        if user is not None:
            try:
                clean_user_id(user)
            except ServiceError as exc:
                raise CommandError(f"invalid --user: {exc.message}") from None
        key, raw = api_key_create(user_id=None if admin else user, name=name)
        scope = "every user (admin)" if admin else f"user {user}"
        self.stderr.write(f"API key {key.pk} for {scope}. Shown once; store it now:")
        self.stdout.write(raw)
