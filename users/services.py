"""Writes for users: summary bookkeeping, regeneration, sweeps and deleting a user's memories."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F

from core import clock, scheduler
from core.exceptions import NotFound
from core.metrics import SUMMARY_FAILURES, SUMMARY_REGENERATIONS
from memories.selectors import Match, memory_query, user_has_memories, users_with_memories
from memories.services import memories_delete_for_user, memories_note_retrieved
from users import summarizer
from users.models import UserSummary
from users.selectors import user_summary_stored

logger = logging.getLogger("openmemory")

# A queued regeneration that has not run by then (broker down, worker lost) may be queued again.
QUEUE_EXPIRY = timedelta(minutes=10)
# The sweep's task, which the embedded scheduler runs for user_summaries_regenerate_all.
REFRESH_STALE_TASK = "users.tasks.refresh_stale_summaries"
REGENERATE_TASK = "users.tasks.regenerate_user_summary"


def user_summary_note_added(*, counts: dict[str, int]) -> None:
    """Counts new memories per user inside the caller's transaction and, when a user reaches
    the interval (or gets a first memory), enqueues one regeneration after commit.

    One upsert for all the users (a second UPDATE only when regenerations fall due). The
    upsert locks the rows (on PostgreSQL; SQLite transactions are IMMEDIATE, so writers are
    serialised anyway) until commit, so concurrent adds for one user take turns here:
    exactly one of them sees the interval reached and claims `queued_at`, which keeps the
    later ones from enqueuing it again.
    """
    if not counts:
        return
    now = clock.now()
    due = [
        (pk, user_id)
        for user_id, (pk, pending, reflections, queued_at) in _count_added(counts, now).items()
        if (reflections == 0 or pending >= settings.OM_USER_SUMMARY_INTERVAL)
        and (queued_at is None or now - queued_at >= QUEUE_EXPIRY)
    ]
    if due:
        UserSummary.objects.filter(pk__in=[pk for pk, _ in due]).update(queued_at=now)
        for _, user_id in due:
            _enqueue_regeneration(user_id)


_SUMMARY_TABLE = UserSummary._meta.db_table
# Every column of a new row (raw SQL applies no model defaults): counters at `added`,
# everything else as the model's defaults. {rows}: one "(%s, %s, %s)" per user.
_COUNT_ADDED = (
    f"INSERT INTO {_SUMMARY_TABLE} (user_id, summary, reflection_count, memory_count, "
    "pending_memories, stale, invalidated, generation, summarized_generation, memories_added, "
    "edited_generation, provider, fallback_reason, created_at) "
    "SELECT column1, '', 0, 0, column2, %s, %s, column2, 0, column2, 0, '', '', column3 "
    "FROM (VALUES {rows}) AS added WHERE true "
    "ON CONFLICT (user_id) DO UPDATE SET "
    f"pending_memories = {_SUMMARY_TABLE}.pending_memories + excluded.pending_memories, "
    f"memories_added = {_SUMMARY_TABLE}.memories_added + excluded.memories_added, "
    f"generation = {_SUMMARY_TABLE}.generation + excluded.generation, stale = excluded.stale "
    "RETURNING user_id, id, pending_memories, reflection_count, queued_at"
)


def _count_added(counts: dict[str, int], now) -> dict[str, tuple[int, int, int, object]]:
    """Adds each user's count to their counters and marks their summary stale (creating the
    row), in one statement, rows taken in sorted order (a fixed lock order avoids deadlocks
    between batches); returns {user_id: (pk, pending_memories, reflection_count,
    queued_at)}."""
    created = connection.ops.adapt_datetimefield_value(now)
    users = sorted(counts)
    params = [True, False] + [v for user_id in users for v in (user_id, counts[user_id], created)]
    with connection.cursor() as cursor:
        cursor.execute(_COUNT_ADDED.format(rows=", ".join(["(%s, %s, %s)"] * len(users))), params)
        rows = cursor.fetchall()
    counted = {}
    for user_id, pk, pending, reflections, queued_at in rows:
        if isinstance(queued_at, str):
            queued_at = datetime.fromisoformat(queued_at)
        if queued_at is not None and queued_at.tzinfo is None:  # SQLite: naive UTC
            queued_at = queued_at.replace(tzinfo=UTC)
        counted[user_id] = (pk, pending, reflections, queued_at)
    return counted


def _enqueue_regeneration(user_id: str) -> None:
    """Sends the regeneration once the caller's transaction commits (so the worker sees the
    new memories). If the broker is down the write still stands: the summary stays stale
    and the scheduled sweep regenerates it."""

    def unqueue() -> None:
        UserSummary.objects.filter(user_id=user_id).update(queued_at=None)

    def send() -> None:
        # only_if_stale=True: a change already summarised elsewhere (on demand, on another app
        # server) is skipped, not rebuilt (user_summary_refresh). Without a broker it runs on
        # the embedded scheduler's thread when one runs, so the add that reached the interval
        # answers without waiting for the summary. If it fails (a busy database past its
        # retries) or cannot be sent, the queue mark is cleared and the sweep does it.
        scheduler.send(REGENERATE_TASK, [user_id, True], on_failure=unqueue)

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
    if not user_has_memories(user_id=user_id):
        UserSummary.objects.filter(user_id=user_id).delete()
        raise NotFound("user not found")
    row, _ = UserSummary.objects.get_or_create(user_id=user_id)
    seen = _Snapshot(pk=row.pk, generation=row.generation, memories_added=row.memories_added)
    try:
        built = summarizer.summarize(user_id)
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


def user_summary_refresh(*, user_id: str) -> UserSummary:
    """A scheduled regeneration: rebuilds the summary unless nothing changed since its text.

    One change can be covered twice when the system runs on several machines: the add's task
    waits in the queue while a reader's GET of a user with no summary yet builds it on
    demand on another app server, or a worker dies after storing the text and the broker
    redelivers the task. The second finds the summary fresh (not stale: no add, edit or
    request since the text's snapshot; not invalidated) and skips, so each change is
    summarised once (one LLM call), not once per instance that noticed it. A change that
    lands after this check makes the summary stale again, and its own enqueue or the sweep
    covers it."""
    summary = UserSummary.objects.filter(user_id=user_id).first()
    fresh = summary is not None and not (summary.stale or summary.invalidated)
    if fresh and summary.reflection_count:
        return summary
    return user_summary_regenerate(user_id=user_id)


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
    user_ids = users_with_memories()
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
    """Deletes the user's memories (vectors and tag links with them) and, through memories'
    announcement (user_summary_forget), their summary."""
    return memories_delete_for_user(user_id=user_id)


def user_summary_forget(*, user_id: str) -> None:
    """After every memory of the user was deleted: nothing is left to summarise."""
    UserSummary.objects.filter(user_id=user_id).delete()


def user_summary_fresh(*, user_id: str) -> UserSummary:
    """The stored summary; built now for a user with memories but no summary yet, or whose
    summary may quote memories that were since edited or deleted."""
    summary = user_summary_stored(user_id=user_id)
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
    gets an empty context rather than an error: apps ask before they know anything. A
    service: the summary may be built (and stored) on the way, and the memories served are
    noted as retrieved (as a query's are)."""
    try:
        summary = user_summary_fresh(user_id=user_id).summary
    except NotFound:
        summary = ""
    matches: list[Match] = []
    if query and not settings.OM_USE_SUMMARY_ONLY:
        matches = memory_query(query=query, k=k, user_id=user_id)
        memories_note_retrieved(memory_ids=[m.memory.pk for m in matches])
    lines = [f"User profile: {summary or '(nothing known yet)'}"]
    if matches:
        lines += ["", "Relevant memories:"] + [f"- {m.memory.content}" for m in matches]
    return Context(user_id=user_id, summary=summary, matches=matches, text="\n".join(lines))
