"""Per request: the request id (X-Request-ID), latency and count metrics, one log line."""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from core.logs import accept_request_id, request_id_var
from core.metrics import HTTP_REQUEST_DURATION, HTTP_REQUESTS

logger = logging.getLogger("openmemory.request")

UNMATCHED = "<unmatched>"
# Any other method string a client sends is one label value, not a new series each.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_REGEX_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")
_CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")


@functools.lru_cache(maxsize=1024)
def route_label(route: str) -> str:
    """A URL pattern as a readable label: `^memory/(?P<pk>[^/.]+)$` and `users/<str:user_id>`
    become `/memory/{pk}` and `/users/{user_id}`."""
    label = _REGEX_GROUP.sub(r"{\1}", route)
    label = _CONVERTER.sub(r"{\1}", label)
    return "/" + label.replace("^", "").replace("$", "").replace("\\", "")


def route_of(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None or match.route is None:
        return UNMATCHED
    return route_label(match.route)


class RequestObservabilityMiddleware:
    """Outermost middleware, so that its time and its request id cover everything else,
    and every line logged while serving the request names it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = accept_request_id(request.META.get("HTTP_X_REQUEST_ID"))
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            elapsed = time.perf_counter() - started
            route = route_of(request)
            method = request.method if request.method in _METHODS else "other"
            HTTP_REQUEST_DURATION.labels(method, route).observe(elapsed)
            HTTP_REQUESTS.labels(method, route, str(response.status_code)).inc()
            response["X-Request-ID"] = request_id
            logger.info(
                "%s %s %s %.1fms",
                request.method,
                request.path,
                response.status_code,
                elapsed * 1000,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
            return response
        finally:
            request_id_var.reset(token)
