"""Server-wide endpoints: health."""

from __future__ import annotations

from django.db import connection
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from memories.embeddings import get_provider
from memories.selectors import memories_awaiting_embedding

VERSION = "0.1.0"


class HealthView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        responses={
            200: inline_serializer(
                "Health",
                {
                    "ok": serializers.BooleanField(),
                    "version": serializers.CharField(),
                    "database": serializers.CharField(),
                    "embeddings": serializers.CharField(),
                    "embeddings_pending": serializers.IntegerField(
                        help_text="memories not yet embedded with the configured model "
                        "(re-embedding runs in the background; they are found by their "
                        "words meanwhile)"
                    ),
                },
            )
        }
    )
    def get(self, request: Request) -> Response:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return Response(
            {
                "ok": True,
                "version": VERSION,
                "database": connection.vendor,
                "embeddings": get_provider().model_id,
                "embeddings_pending": memories_awaiting_embedding(),
            }
        )
