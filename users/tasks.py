"""Celery tasks for users: thin, idempotent wrappers that take ids and call a service."""

from __future__ import annotations

import contextlib

from celery import shared_task

from core.exceptions import NotFound
from core.tasks import RELIABLE
from users.services import (
    user_summaries_refresh_stale,
    user_summary_refresh,
    user_summary_regenerate,
)


@shared_task(**RELIABLE)
def regenerate_user_summary(user_id: str, only_if_stale: bool = False) -> None:
    """`only_if_stale`: sent by the services' own scheduling (interval, edit, sweep), which
    must rebuild once per change; an operator's request (the admin action) always rebuilds."""
    # NotFound: the user's memories were deleted before the task ran; nothing to summarise.
    with contextlib.suppress(NotFound):
        if only_if_stale:
            user_summary_refresh(user_id=user_id)
        else:
            user_summary_regenerate(user_id=user_id)


@shared_task(**RELIABLE)
def refresh_stale_summaries() -> int:
    return user_summaries_refresh_stale()
