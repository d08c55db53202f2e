"""Options every app's Celery tasks share: delivery that survives a lost worker."""

from __future__ import annotations

from django.db import DatabaseError

# acks_late + reject_on_worker_lost: a worker killed mid-task leaves the message unacked, so
# the broker hands it to another worker. Every task is idempotent (a summary is rebuilt from
# the memories, decay is idempotent in time), so redelivery never corrupts anything.
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
