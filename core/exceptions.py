"""The one place that turns every error into a `{"err": "..."}` JSON body."""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

logger = logging.getLogger("openmemory")


class ServiceError(Exception):
    """A business-rule failure a caller can act on; carries the HTTP status it maps to."""

    status_code = status.HTTP_400_BAD_REQUEST

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code


class NotFound(ServiceError):
    status_code = status.HTTP_404_NOT_FOUND


def _first_error(detail, path: tuple = ()) -> tuple[tuple, str] | None:
    """The first (path, message) in a DRF error tree, depth first."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            found = _first_error(value, (*path, key))
            if found:
                return found
        return None
    if isinstance(detail, list):
        for value in detail:
            found = _first_error(value, path)
            if found:
                return found
        return None
    return path, str(detail)


def _first_message(detail) -> str:
    found = _first_error(detail)
    if found is None:
        return "invalid request"
    path, message = found
    keys = [k for k in path if k not in ("non_field_errors", "detail")]
    field = keys[-1] if keys and isinstance(keys[-1], str) else None
    if field is not None and not message.startswith(field):
        message = f"{field}: {message}"
    # Keep only the position inside a list (e.g. which batch item failed).
    last_index = max((i for i, k in enumerate(keys) if isinstance(k, int)), default=None)
    if last_index is None:
        return message
    where = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in keys[: last_index + 1])
    return f"{where.lstrip('.')}: {message}"


def err_exception_handler(exc: Exception, context: dict) -> Response:
    if isinstance(exc, ServiceError):
        return Response({"err": exc.message}, status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        return Response({"err": "; ".join(exc.messages)}, status=400)
    if isinstance(exc, Http404):
        return Response({"err": "not found"}, status=404)
    if isinstance(exc, DjangoPermissionDenied):
        return Response({"err": "forbidden"}, status=403)
    response = exception_handler(exc, context)
    if response is None:
        logger.exception("unhandled error", exc_info=exc)
        return Response({"err": "internal server error"}, status=500)
    if isinstance(exc, exceptions.MethodNotAllowed):
        message = f"method {context['request'].method} not allowed"
    else:
        message = _first_message(exc.detail if isinstance(exc, exceptions.APIException) else {})
    response.data = {"err": message}
    return response


def json_error(status_code: int, message: str) -> JsonResponse:
    return JsonResponse({"err": message}, status=status_code)


def handler400(request: HttpRequest, exception=None) -> JsonResponse:
    return json_error(400, "bad request")


def handler403(request: HttpRequest, exception=None) -> JsonResponse:
    return json_error(403, "forbidden")


def handler404(request: HttpRequest, exception=None) -> JsonResponse:
    return json_error(404, "not found")


def handler500(request: HttpRequest) -> JsonResponse:
    return json_error(500, "internal server error")
