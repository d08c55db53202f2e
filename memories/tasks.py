"""Celery tasks for memories: thin wrappers around services."""

from __future__ import annotations

from celery import shared_task
from celery.signals import worker_ready

from core.tasks import RELIABLE
from memories.services import memories_decay, memories_index_vectors, memories_reembed


@shared_task(**RELIABLE)
def decay_salience() -> int:
    return memories_decay()


@shared_task(**RELIABLE)
def index_vectors() -> int:
    return memories_index_vectors()


@shared_task(**RELIABLE)
def reembed_memories() -> int:
    return memories_reembed()


@worker_ready.connect
def _reembed_when_a_worker_starts(**_) -> None:
    # After a change of OM_EMBEDDINGS the workers restart with it: catch up at once rather
    # than at the next scheduled run. Idempotent, so several workers starting is harmless.
    reembed_memories.delay()
