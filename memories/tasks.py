"""Celery tasks for memories: thin wrappers around services."""

from __future__ import annotations

from celery import shared_task

from users.tasks import RELIABLE


@shared_task(**RELIABLE)
def decay_salience() -> int:
    from memories.services import memories_decay

    return memories_decay()


@shared_task(**RELIABLE)
def reembed_memories() -> int:
    from memories.services import memories_reembed

    return memories_reembed()
