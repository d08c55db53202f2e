"""Reads for users: their memories and their summary."""

from __future__ import annotations

from memories.selectors import memory_list, user_has_memories
from users.models import UserSummary
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
