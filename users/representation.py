"""Plain-dict shape of a user's summary, as the HTTP API and the MCP tools answer."""

from __future__ import annotations

from core.clock import to_ms
from users.models import UserSummary


def summary_item(summary: UserSummary) -> dict:
    return {
        "user_id": summary.user_id,
        "summary": summary.summary,
        "reflection_count": summary.reflection_count,
        "updated_at": to_ms(summary.updated_at),
    }
