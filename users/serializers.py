"""Input and output shapes of the per-user endpoints that are not plain memory lists."""

from __future__ import annotations

from django.conf import settings
from rest_framework import serializers

from memories.serializers import MatchOutSerializer, StrictCharField, UserIdField, k_field


class ContextSerializer(serializers.Serializer):
    user_id = UserIdField(
        error_messages={"required": "user_id required", "null": "user_id required"}
    )
    query = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=settings.OM_MAX_CONTENT_CHARS,
        error_messages={"invalid": "query must be a string"},
    )
    k = k_field()


class ContextOutSerializer(serializers.Serializer):
    user_id = serializers.CharField()
    summary = serializers.CharField(allow_blank=True)
    matches = MatchOutSerializer(many=True)
    context = serializers.CharField()
