"""Time helpers: the server's notion of now and epoch-millisecond timestamps."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone


def now() -> datetime:
    return timezone.now()


def to_ms(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)
