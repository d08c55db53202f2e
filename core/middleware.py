"""Request-level guards: request bodies (chunked or oversized), and rate-limit headers."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from typing import Any, BinaryIO

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from core.exceptions import json_error

READ_BLOCK = 64 * 1024
# An over-limit body is read and thrown away before the 413 goes out: a client still sending
# (urllib sends the whole body before reading) would otherwise have the connection reset under
# it and never see the answer. Past this many bytes the connection is dropped instead.
DRAIN_MAX_BYTES = 64 * 1024 * 1024


def too_large_message() -> str:
    return f"body too large (limit {settings.OM_MAX_BODY_BYTES} bytes)"


def _drain(read: Callable[[int], bytes], at_most: int) -> None:
    while at_most > 0:
        block = read(min(READ_BLOCK, at_most))
        if not block:
            return
        at_most -= len(block)


class ChunkedBodyMiddleware:
    """WSGI middleware (openmemory/wsgi.py) for bodies sent without a Content-Length
    (`Transfer-Encoding: chunked`, as Node's http.request and streaming clients send them).

    Django sizes a request body from CONTENT_LENGTH alone, so such a body reads as empty. When
    the server says its input ends where the body ends (`wsgi.input_terminated`: gunicorn
    de-chunks it), the body is read here, up to OM_MAX_BODY_BYTES (413 past it), and handed
    on with its length.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if environ.get("CONTENT_LENGTH") or not environ.get("wsgi.input_terminated"):
            return self.app(environ, start_response)
        limit = settings.OM_MAX_BODY_BYTES
        stream: BinaryIO = environ["wsgi.input"]
        body = bytearray()
        while len(body) <= limit:
            block = stream.read(min(READ_BLOCK, limit + 1 - len(body)))
            if not block:
                break
            body += block
        if len(body) > limit:
            _drain(stream.read, DRAIN_MAX_BYTES)
            payload = json.dumps({"err": too_large_message()}).encode()
            headers = [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
            start_response("413 Request Entity Too Large", headers)
            return [payload]
        environ["wsgi.input"] = io.BytesIO(bytes(body))
        environ["CONTENT_LENGTH"] = str(len(body))
        return self.app(environ, start_response)


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
            _drain(request.read, min(length, DRAIN_MAX_BYTES))
            return json_error(413, too_large_message())
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
