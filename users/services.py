"""Writes for users: summary bookkeeping, regeneration, sweeps and deleting a user's memories."""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F

from core.metrics import SUMMARY_FAILURES, SUMMARY_REGENERATIONS
from openmemory import clock
from openmemory.exceptions import NotFound
from users.models import ApiKey, UserSummary

logger = logging.getLogger("openmemory")

# A queued regeneration that has not run by then (broker down, worker lost) may be queued again.
QUEUE_EXPIRY = timedelta(minutes=10)
# The sweep's task, which the embedded scheduler runs for user_summaries_regenerate_all.
REFRESH_STALE_TASK = "users.tasks.refresh_stale_summaries"


def user_summary_note_added(*, counts: dict[str, int]) -> None:
    """Counts new memories per user inside the caller's transaction and, when a user reaches
    the interval (or gets a first memory), enqueues one regeneration after commit.

    Three statements whatever the number of users. The rows are locked (on PostgreSQL; SQLite
    transactions are IMMEDIATE, so writers are serialised anyway) so that concurrent adds for
    one user take turns here: exactly one of them sees the interval reached and enqueues, and
    `queued_at` keeps the later ones from enqueuing it again.
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
        added = counts[summary.user_id]
        summary.pending_memories += added
        summary.memories_added += added
        summary.generation += added
        summary.stale = True
        if _is_due(summary) and not _is_queued(summary, now):
            summary.queued_at = now
            _enqueue_regeneration(summary.user_id)
    UserSummary.objects.bulk_update(
        summaries, ["pending_memories", "memories_added", "generation", "stale", "queued_at"]
    )


def _is_due(summary: UserSummary) -> bool:
    return (
        summary.reflection_count == 0
        or summary.pending_memories >= settings.OM_USER_SUMMARY_INTERVAL
    )


def _is_queued(summary: UserSummary, now) -> bool:
    return summary.queued_at is not None and now - summary.queued_at < QUEUE_EXPIRY


def _enqueue_regeneration(user_id: str) -> None:
    """Sends the regeneration once the caller's transaction commits (so the worker sees the
    new memories). If the broker is down the write still stands: the summary stays stale
    and the scheduled sweep regenerates it."""
    from users.tasks import regenerate_user_summary

    def send() -> None:
        try:
            regenerate_user_summary.delay(user_id)
        except Exception as exc:  # kombu raises several types for an unreachable broker
            logger.warning("could not enqueue summary of %s (%s); the sweep will", user_id, exc)
            UserSummary.objects.filter(user_id=user_id).update(queued_at=None)

    transaction.on_commit(send)


def user_summary_invalidate(*, user_id: str) -> None:
    """After a memory of the user was edited or deleted: the summary must not be served
    until rebuilt, and a rebuild is enqueued after commit."""
    # One UPDATE (both right-hand sides read the row as it was): the edit is a change of its
    # own, and regenerations that started before it know they did not see it.
    changed = UserSummary.objects.filter(user_id=user_id).update(
        generation=F("generation") + 1,
        edited_generation=F("generation") + 1,
        stale=True,
        invalidated=True,
    )
    if changed:
        _enqueue_regeneration(user_id)


@dataclass(frozen=True)
class _Snapshot:
    """What a regeneration saw when it started: the summary row's counters at that moment.
    Every memory counted in them was committed with them, so the summarizer (which reads
    afterwards) sees at least those memories."""

    pk: int
    generation: int
    memories_added: int


def user_summary_regenerate(*, user_id: str) -> UserSummary:
    """Rebuilds the summary from the user's current memories; 404 for a user with none.

    The text is built outside any lock (an LLM may take seconds), so regenerations overlap:
    A starts, memories are added, B starts and finishes, more are added, A finishes. The
    finishing one keeps its text only if no regeneration that started later already stored
    one (A's older text would hide B's memories), and it clears only what it saw: adds,
    edits and requests after its start keep the summary pending, invalidated or stale, so a
    later regeneration (the interval, the edit's own, or the sweep) covers them.
    """
    from memories.selectors import user_has_memories
    from users.summarizer import summarize

    if not user_has_memories(user_id=user_id):
        UserSummary.objects.filter(user_id=user_id).delete()
        raise NotFound("user not found")
    row, _ = UserSummary.objects.get_or_create(user_id=user_id)
    seen = _Snapshot(pk=row.pk, generation=row.generation, memories_added=row.memories_added)
    try:
        built = summarize(user_id)
    except Exception:
        SUMMARY_FAILURES.labels("error").inc()
        raise
    SUMMARY_REGENERATIONS.labels(built.provider).inc()
    if built.fallback_reason:
        SUMMARY_FAILURES.labels("llm_fallback").inc()
    with transaction.atomic():
        summary = UserSummary.objects.select_for_update().filter(pk=seen.pk).first()
        if summary is None:  # the user's memories were deleted meanwhile
            raise NotFound("user not found")
        if summary.summarized_generation > seen.generation:
            # A regeneration that started after this one has already stored its text.
            return summary
        summary.summary = built.text
        summary.provider = built.provider
        summary.fallback_reason = built.fallback_reason
        summary.memory_count = built.memory_count
        summary.summarized_generation = seen.generation
        summary.pending_memories = summary.memories_added - seen.memories_added
        summary.invalidated = summary.edited_generation > seen.generation
        summary.stale = summary.generation > seen.generation
        summary.reflection_count = F("reflection_count") + 1
        summary.updated_at = clock.now()
        summary.queued_at = None
        if summary.pending_memories >= settings.OM_USER_SUMMARY_INTERVAL:
            # Enough arrived during the build for another round; those adds saw this one
            # queued and did not enqueue themselves.
            summary.queued_at = clock.now()
            _enqueue_regeneration(user_id)
        summary.save()
        summary.refresh_from_db()
    return summary


def user_summaries_refresh_stale() -> int:
    """The scheduled sweep: enqueues a regeneration for every stale summary that is not
    already queued (users active since their last summary, or whose enqueue was lost)."""
    now = clock.now()
    with transaction.atomic():
        due = list(
            UserSummary.objects.select_for_update(skip_locked=True)
            .filter(stale=True)
            .exclude(queued_at__gt=now - QUEUE_EXPIRY)
            .values_list("user_id", flat=True)
        )
        UserSummary.objects.filter(user_id__in=due).update(queued_at=now)
        for user_id in due:
            _enqueue_regeneration(user_id)
    return len(due)


def user_summaries_regenerate_all() -> int:
    """Requests a regeneration for every user who has memories; returns how many.

    Each request is a change of the summary (its generation moves on and it is stale), so a
    regeneration already under way cannot mark it fresh, and if the enqueue is lost the
    sweep still finds it. With a broker, one task per user is enqueued. Without one, tasks
    would run inside this request (minutes for many users with an LLM): the sweep is handed
    to the in-process scheduler instead, which regenerates every stale summary in the
    background, and the request returns at once.
    """
    from memories.models import Memory
    from openmemory import scheduler

    user_ids = sorted(
        Memory.objects.filter(user_id__isnull=False)
        .order_by()
        .values_list("user_id", flat=True)
        .distinct()
    )
    with transaction.atomic():
        UserSummary.objects.bulk_create(
            [UserSummary(user_id=user_id) for user_id in user_ids], ignore_conflicts=True
        )
        requested = UserSummary.objects.filter(user_id__in=user_ids)
        if scheduler.embedded():
            requested.update(generation=F("generation") + 1, stale=True, queued_at=None)
            transaction.on_commit(lambda: scheduler.run_soon(REFRESH_STALE_TASK))
        else:
            requested.update(generation=F("generation") + 1, stale=True, queued_at=clock.now())
            for user_id in user_ids:
                _enqueue_regeneration(user_id)
    return len(user_ids)


def user_delete_memories(*, user_id: str) -> int:
    """Deletes the user's memories (vectors and tag links with them) and their summary."""
    from memories.services import memories_delete_for_user

    with transaction.atomic():
        deleted = memories_delete_for_user(user_id=user_id)
        UserSummary.objects.filter(user_id=user_id).delete()
    return deleted


def api_key_create(*, user_id: str | None, name: str = "") -> tuple[ApiKey, str]:
    """A new key for one user (or, with user_id None, an admin key). Returns the row and the
    key itself, which is not stored and cannot be shown again."""
    raw = "om_" + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        name=name, user_id=user_id, prefix=raw[:10], key_hash=api_key_hash(raw)
    )
    keys_changed()
    return key, raw


def api_key_revoke(*, key_id: int) -> ApiKey:
    key = ApiKey.objects.get(pk=key_id)
    if key.revoked_at is None:
        key.revoked_at = clock.now()
        key.save(update_fields=["revoked_at"])
    keys_changed()
    return key


def api_key_hash(raw: str) -> str:
    # Keys are 256 random bits: a plain SHA-256 cannot be reversed or brute-forced, and a
    # fast hash keeps the lookup on every request cheap.
    return hashlib.sha256(raw.encode()).hexdigest()


def api_key_touch(*, key: ApiKey) -> None:
    """Records use, at most once a minute per key, so that requests do not all write."""
    now = clock.now()
    if key.last_used_at is None or now - key.last_used_at > timedelta(minutes=1):
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)


def keys_changed() -> None:
    from openmemory.auth import forget_stored_keys

    forget_stored_keys()
