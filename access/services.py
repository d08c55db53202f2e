"""Writes for access: creating, revoking and recording the use of stored API keys."""

from __future__ import annotations

import secrets
from datetime import timedelta

from access.models import ApiKey
from access.selectors import api_key_hash, forget_stored_keys
from core import clock


def api_key_create(*, user_id: str | None, name: str = "") -> tuple[ApiKey, str]:
    """A new key for one user (or, with user_id None, an admin key). Returns the row and the
    key itself, which is not stored and cannot be shown again."""
    raw = "om_" + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        name=name, user_id=user_id, prefix=raw[:10], key_hash=api_key_hash(raw)
    )
    forget_stored_keys()
    return key, raw


def api_key_revoke(*, key_id: int) -> ApiKey:
    key = ApiKey.objects.get(pk=key_id)
    if key.revoked_at is None:
        key.revoked_at = clock.now()
        key.save(update_fields=["revoked_at"])
    forget_stored_keys()
    return key


def api_key_touch(*, key: ApiKey) -> None:
    """Records use, at most once a minute per key, so that requests do not all write."""
    now = clock.now()
    if key.last_used_at is None or now - key.last_used_at > timedelta(minutes=1):
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
