"""Per-key rate limiting: a fixed one-minute window per API key, counted in Django's cache."""

from __future__ import annotations

import hashlib
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

WINDOW = 60  # seconds


class KeyRateThrottle(BaseThrottle):
    """OM_RATE_LIMIT requests per minute per API key (0: no limit). The counters live in the
    default cache: Redis when OM_REDIS_URL is set, so every gunicorn worker shares them;
    otherwise per process, where the effective limit is multiplied by the workers."""

    def allow_request(self, request, view) -> bool:
        limit = settings.OM_RATE_LIMIT
        if not limit:
            return True
        now = time.time()
        window = int(now // WINDOW)
        ident = hashlib.sha256((request.auth or self.get_ident(request)).encode()).hexdigest()
        key = f"om:rl:{ident[:32]}:{window}"
        # add() then incr(): atomic on Redis and in the local-memory cache alike.
        cache.add(key, 0, timeout=WINDOW + 5)
        count = cache.incr(key)
        self.reset_in = int((window + 1) * WINDOW - now) + 1
        # Kept on the Django request so the middleware can add X-RateLimit-* headers to
        # every response, not only to the 429.
        request._request.om_ratelimit = (limit, max(0, limit - count), self.reset_in)
        return count <= limit

    def wait(self) -> float:
        return self.reset_in
