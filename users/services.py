"""Writes for users: summary bookkeeping, regeneration and deleting a user's memories."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F

from openmemory import clock
from openmemory.exceptions import NotFound
from users.models import UserSummary

# A queued regeneration that has not run by then (broker down, worker lost) may be queued again.
QUEUE_EXPIRY = timedelta(minutes=10)


def user_summary_note_added(*, counts: dict[str, int]) -> None:
    """Counts new memories per user inside the caller's transaction and, when a user reaches
    the interval (or gets a first memory), enqueues one regeneration after commit.

    Three statements whatever the number of users. The rows are locked (on PostgreSQL) so
    that concurrent adds for one user serialise here: exactly one of them sees the interval
    reached and enqueues, and `queued_at` keeps later ones from enqueuing it again.
    """
    now = clock.now()
    user_ids = sorted(counts)  # a fixed lock order avoids deadlocks between batches
    UserSummary.objects.bulk_create(
        [UserSummary(user_id=user_id) for user_id in user_ids], ignore_conflicts=True
    )
    summaries = list(
        UserSummary.objects.select_for_update().filter(user_id__in=user_ids).order_by("user_id")
    )
    for summary in summaries:
        summary.pending_memories += counts[summary.user_id]
        summary.stale = True
        due = (
            summary.reflection_count == 0
            or summary.pending_memories >= settings.OM_USER_SUMMARY_INTERVAL
        )
        already_queued = summary.queued_at is not None and now - summary.queued_at < QUEUE_EXPIRY
        if due and not already_queued:
            summary.queued_at = now
            _enqueue_regeneration(summary.user_id)
    UserSummary.objects.bulk_update(summaries, ["pending_memories", "stale", "queued_at"])


def _enqueue_regeneration(user_id: str) -> None:
    from users.tasks import regenerate_user_summary

    transaction.on_commit(lambda: regenerate_user_summary.delay(user_id))


def user_summary_invalidate(*, user_id: str) -> None:
    """After a memory of the user was edited or deleted: the summary must not be served
    until rebuilt, and a rebuild is enqueued after commit."""
    if UserSummary.objects.filter(user_id=user_id).update(stale=True, invalidated=True):
        _enqueue_regeneration(user_id)


def user_summary_regenerate(*, user_id: str) -> UserSummary:
    """Rebuilds the summary from the user's current memories; 404 for a user with none."""
    from users.summarizer import summarize

    built = summarize(user_id)
    total = built.memory_count
    if total == 0:
        UserSummary.objects.filter(user_id=user_id).delete()
        raise NotFound("user not found")
    with transaction.atomic():
        summary, _ = UserSummary.objects.select_for_update().get_or_create(user_id=user_id)
        # Memories added while the text was built stay counted as pending.
        pending = max(0, summary.pending_memories - max(0, total - summary.memory_count))
        summary.summary = built.text
        summary.provider = built.provider
        summary.fallback_reason = built.fallback_reason
        summary.memory_count = total
        summary.pending_memories = pending
        summary.reflection_count = F("reflection_count") + 1
        summary.updated_at = clock.now()
        summary.stale = False
        summary.invalidated = False
        summary.queued_at = None
        summary.save()
        summary.refresh_from_db()
    return summary


def user_delete_memories(*, user_id: str) -> int:
    """Deletes the user's memories (vectors and tag links with them) and their summary."""
    from memories.services import memories_delete_for_user

    with transaction.atomic():
        deleted = memories_delete_for_user(user_id=user_id)
        UserSummary.objects.filter(user_id=user_id).delete()
    return deleted
