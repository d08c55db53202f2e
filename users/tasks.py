"""Celery tasks for users: thin wrappers that take ids and call a service."""

from __future__ import annotations

import contextlib

from celery import shared_task

from openmemory.exceptions import NotFound


@shared_task(acks_late=True, ignore_result=True)
def regenerate_user_summary(user_id: str) -> None:
    from users.services import user_summary_regenerate

    # NotFound: the user's memories were deleted before the task ran; nothing to summarise.
    with contextlib.suppress(NotFound):
        user_summary_regenerate(user_id=user_id)
