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


def _first_message(detail) -> str:
    if isinstance(detail, dict):
        if not detail:
            return "invalid request"
        key, value = next(iter(detail.items()))
        message = _first_message(value)
        if key in ("non_field_errors", "detail") or message.startswith(f"{key} "):
            return message
        return f"{key}: {message}"
    if isinstance(detail, list):
        return _first_message(detail[0]) if detail else "invalid request"
    return str(detail)


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
