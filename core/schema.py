"""OpenAPI description: the `{"err"}` error shape on every operation."""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

# Every operation can answer these, each with {"err": "..."} (core/exceptions.py).
ERROR_STATUSES = {
    "400": "Invalid input: malformed JSON, a bad field, bad paging",
    "401": "API key required",
    "403": "Invalid API key",
    "404": "Not found",
    "405": "Method not allowed",
    "409": "Conflicts with an existing memory",
    "413": "Body too large",
    "502": "The embedding service failed",
}


class ErrorSerializer(serializers.Serializer):
    err = serializers.CharField(help_text="A readable message")


class ErrAutoSchema(AutoSchema):
    """Documents the error responses on every operation, beside the ones the view declares."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code, description in ERROR_STATUSES.items():
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(ErrorSerializer, description=description), code
                )
        return responses
