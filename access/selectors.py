"""Reads for access: stored keys, looked up by the key a request presents."""

from __future__ import annotations

import hashlib
import time

from access.models import ApiKey

# Whether any stored key exists, cached briefly: asking on every request would cost a query.
# A key created or revoked in this process clears it at once; in other processes (a
# `manage.py create_api_key` beside a running server) it takes effect within this time.
STORED_KEYS_TTL = 5.0
_stored_keys: tuple[float, bool] | None = None


def forget_stored_keys() -> None:
    global _stored_keys
    _stored_keys = None


def any_stored_key() -> bool:
    """Whether any key was ever stored (revoked ones count: revoking the last key must not
    open the server)."""
    global _stored_keys
    now = time.monotonic()
    if _stored_keys is None or now - _stored_keys[0] > STORED_KEYS_TTL:
        _stored_keys = (now, ApiKey.objects.exists())
    return _stored_keys[1]


def api_key_hash(raw: str) -> str:
    # Keys are 256 random bits: a plain SHA-256 cannot be reversed or brute-forced, and a
    # fast hash keeps the lookup on every request cheap.
    return hashlib.sha256(raw.encode()).hexdigest()


def api_key_find(*, raw: str) -> ApiKey | None:
    """The active stored key matching a presented key, if any."""
    return ApiKey.objects.active().filter(key_hash=api_key_hash(raw)).first()
