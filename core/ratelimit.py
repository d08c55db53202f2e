"""Rate limits in one-minute windows counted in Django's cache: requests, and bad API keys."""

from __future__ import annotations

import hashlib
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from rest_framework.exceptions import Throttled
from rest_framework.throttling import BaseThrottle

WINDOW = 60  # seconds


def client_address(request: HttpRequest) -> str:
    """The address the request came from. X-Forwarded-For is whatever the client wrote, except
    for the entries appended by the OM_TRUSTED_PROXIES proxies in front of this server: the
    Nth entry from the right is the address the outermost of them saw."""
    remote = request.META.get("REMOTE_ADDR", "")
    proxies = settings.OM_TRUSTED_PROXIES
    if not proxies:
        return remote
    forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [a for a in forwarded if a]
    if not forwarded:
        return remote
    # Fewer entries than proxies: the request skipped some of them, so the leftmost entry is
    # the earliest hop anyone vouches for.
    return forwarded[-min(proxies, len(forwarded))]


def _window(kind: str, ident: str) -> tuple[str, int]:
    """This minute's cache key for (kind, ident), and the seconds until the next minute."""
    now = time.time()
    window = int(now // WINDOW)
    digest = hashlib.sha256(ident.encode()).hexdigest()[:32]
    return f"om:{kind}:{digest}:{window}", int((window + 1) * WINDOW - now) + 1


def _incr(key: str) -> int:
    # add() then incr(): atomic on Redis and in the local-memory cache alike.
    cache.add(key, 0, timeout=WINDOW + 5)
    return cache.incr(key)


class KeyRateThrottle(BaseThrottle):
    """Requests per minute: per user-scoped key, OM_RATE_LIMIT; per admin key, and per client
    address on an open server, OM_ADMIN_RATE_LIMIT (none by default: an operator's backfill
    must never be refused); per client address on public endpoints (/health), OM_RATE_LIMIT.
    0 means no limit. The counters live in the default cache: Redis when OM_REDIS_URL is set,
    so every gunicorn worker shares them; otherwise per process, where the effective limit is
    multiplied by the workers."""

    def allow_request(self, request, view) -> bool:
        client = request.user
        scope = getattr(client, "scope", None)
        limit = settings.OM_RATE_LIMIT
        if scope is not None and scope.is_admin:
            limit = settings.OM_ADMIN_RATE_LIMIT
        if not limit:
            return True
        ident = f"key:{request.auth}" if request.auth else f"addr:{client_address(request)}"
        key, self.reset_in = _window("rl", ident)
        count = _incr(key)
        # Kept on the Django request so the middleware can add X-RateLimit-* headers to
        # every response, not only to the 429.
        request._request.om_ratelimit = (limit, max(0, limit - count), self.reset_in)
        return count <= limit

    def wait(self) -> float:
        return self.reset_in


def check_auth_failures(request: HttpRequest) -> None:
    """429 for an address past OM_AUTH_FAILURE_LIMIT bad keys this minute, before its key is
    even looked at: answering a right guess differently would let guessing go on."""
    limit = settings.OM_AUTH_FAILURE_LIMIT
    if not limit:
        return
    key, reset_in = _window("af", client_address(request))
    if cache.get(key, 0) >= limit:
        raise Throttled(reset_in, detail="too many invalid API keys.")


def record_auth_failure(request: HttpRequest) -> None:
    if settings.OM_AUTH_FAILURE_LIMIT:
        _incr(_window("af", client_address(request))[0])
