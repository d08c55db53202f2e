"""Reads for users: their memories and their stored summary."""

from __future__ import annotations

from memories.selectors import memory_list
from users.models import UserSummary


def user_memories(*, user_id: str, limit: int, offset: int):
    return memory_list(user_id=user_id, limit=limit, offset=offset)


def user_summary_stored(*, user_id: str) -> UserSummary | None:
    """The stored summary, if one was built and nothing it may quote changed since."""
    return UserSummary.objects.filter(
        user_id=user_id, reflection_count__gt=0, invalidated=False
    ).first()


def summaries_queued() -> int:
    """Summaries whose regeneration is queued and not finished: the background backlog."""
    return UserSummary.objects.filter(queued_at__isnull=False).count()
