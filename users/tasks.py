"""Celery tasks for users: thin, idempotent wrappers that take ids and call a service."""

from __future__ import annotations

import contextlib

from celery import shared_task
from django.db import DatabaseError

from openmemory.exceptions import NotFound

# acks_late + reject_on_worker_lost: a worker killed mid-task leaves the message unacked, so
# the broker hands it to another worker. Regenerating twice is harmless (the text is rebuilt
# from the memories), so redelivery never corrupts anything.
RELIABLE = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "ignore_result": True,
    "autoretry_for": (DatabaseError,),
    "retry_backoff": 2,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 8,
}


@shared_task(**RELIABLE)
def regenerate_user_summary(user_id: str, only_if_stale: bool = False) -> None:
    """`only_if_stale`: sent by the services' own scheduling (interval, edit, sweep), which
    must rebuild once per change; an operator's request (the admin action) always rebuilds."""
    from users.services import user_summary_refresh, user_summary_regenerate

    # NotFound: the user's memories were deleted before the task ran; nothing to summarise.
    with contextlib.suppress(NotFound):
        if only_if_stale:
            user_summary_refresh(user_id=user_id)
        else:
            user_summary_regenerate(user_id=user_id)


@shared_task(**RELIABLE)
def refresh_stale_summaries() -> int:
    from users.services import user_summaries_refresh_stale

    return user_summaries_refresh_stale()
