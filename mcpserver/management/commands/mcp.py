"""manage.py mcp: the MCP tools over stdio, for MCP clients that start a local command."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from rest_framework.exceptions import APIException

from access.auth import scope_for_key
from mcpserver.tools import build_server


class Command(BaseCommand):
    help = (
        "Serve the MCP tools over stdin/stdout. The API key (OM_MCP_API_KEY or --api-key) is "
        "checked as the HTTP API checks it: a user-scoped key reaches only its user."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--api-key", default=None, help="the API key to act with (default: $OM_MCP_API_KEY)"
        )

    def handle(self, *args, api_key: str | None, **options) -> None:
        key = api_key or settings.OM_MCP_API_KEY
        # Checked again on every call (a key revoked meanwhile stops working); refusing to
        # start shows a wrong key in the MCP client's log instead of in every tool answer.
        try:
            scope = scope_for_key(key)
        except APIException as exc:
            raise CommandError(f"{exc.detail} (set OM_MCP_API_KEY or pass --api-key)") from None
        who = "every user" if scope.is_admin else f"user {scope.user_id}"
        self.stderr.write(f"OpenMemory MCP server on stdio, acting for {who}")
        # Tools open their own connections in their threads; this one is done.
        connections.close_all()
        build_server(api_key=key).run("stdio")
