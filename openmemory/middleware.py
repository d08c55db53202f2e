"""Request-level guards: oversized bodies, and rate-limit headers on every response."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from openmemory.exceptions import json_error


class BodySizeLimitMiddleware:
    # DRF reads the request stream directly, bypassing DATA_UPLOAD_MAX_MEMORY_SIZE, so the
    # limit is enforced here on the declared length.
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        raw = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw)
        except ValueError:
            return json_error(400, "invalid Content-Length")
        if length > settings.OM_MAX_BODY_BYTES:
            return json_error(413, f"body too large (limit {settings.OM_MAX_BODY_BYTES} bytes)")
        return self.get_response(request)


class RateLimitHeadersMiddleware:
    """Adds X-RateLimit-Limit/Remaining/Reset when the rate limit counted the request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        counted = getattr(request, "om_ratelimit", None)
        if counted is not None:
            limit, remaining, reset = counted
            response["X-RateLimit-Limit"] = str(limit)
            response["X-RateLimit-Remaining"] = str(remaining)
            response["X-RateLimit-Reset"] = str(reset)
        return response
