"""Rejects oversized request bodies before anything reads them."""

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
