"""Plain-dict shapes of a user's summary and prompt context, as the HTTP API and the MCP tools
answer."""

from __future__ import annotations

from core.clock import to_ms
from memories.representation import match_item
from users.models import UserSummary
from users.services import Context


def summary_item(summary: UserSummary) -> dict:
    return {
        "user_id": summary.user_id,
        "summary": summary.summary,
        "reflection_count": summary.reflection_count,
        "updated_at": to_ms(summary.updated_at),
    }


def context_item(context: Context) -> dict:
    return {
        "user_id": context.user_id,
        "summary": context.summary,
        "matches": [match_item(m) for m in context.matches],
        "context": context.text,
    }
