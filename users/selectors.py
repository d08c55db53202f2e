"""Reads for users: their memories and their summary."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from memories.selectors import Match, memory_list, memory_query, user_has_memories
from openmemory.exceptions import NotFound
from users.models import ApiKey, UserSummary
from users.services import user_summary_regenerate


def user_memories(*, user_id: str, limit: int, offset: int):
    return memory_list(user_id=user_id, limit=limit, offset=offset)


def user_summary_get(*, user_id: str) -> UserSummary:
    """The stored summary; built on demand for a user with memories but no summary yet, or
    whose summary may quote memories that were since edited or deleted."""
    summary = UserSummary.objects.filter(
        user_id=user_id, reflection_count__gt=0, invalidated=False
    ).first()
    if summary is not None and user_has_memories(user_id=user_id):
        return summary
    return user_summary_regenerate(user_id=user_id)  # 404 "user not found" when none


@dataclass(frozen=True)
class Context:
    user_id: str
    summary: str
    matches: list[Match]
    text: str


def user_context(*, user_id: str, query: str | None, k: int) -> Context:
    """Prompt-ready context for one user: their summary, plus (unless OM_USE_SUMMARY_ONLY,
    or without a query) the memories most relevant to the query. A user with no memories
    gets an empty context rather than an error: apps ask before they know anything."""
    try:
        summary = user_summary_get(user_id=user_id).summary
    except NotFound:
        summary = ""
    matches: list[Match] = []
    if query and not settings.OM_USE_SUMMARY_ONLY:
        matches = memory_query(query=query, k=k, user_id=user_id)
    lines = [f"User profile: {summary or '(nothing known yet)'}"]
    if matches:
        lines += ["", "Relevant memories:"] + [f"- {m.memory.content}" for m in matches]
    return Context(user_id=user_id, summary=summary, matches=matches, text="\n".join(lines))


def api_key_find(*, raw: str) -> ApiKey | None:
    """The active stored key matching a presented key, if any."""
    from users.services import api_key_hash

    return ApiKey.objects.active().filter(key_hash=api_key_hash(raw)).first()
