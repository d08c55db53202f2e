"""Server-wide endpoints: health and the sector catalogue."""

from __future__ import annotations

from django.db import connection
from rest_framework import viewsets
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from memories.embeddings import get_provider
from memories.sectors import SECTORS

VERSION = "0.1.0"


class HealthViewSet(viewsets.ViewSet):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    def list(self, request: Request) -> Response:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return Response(
            {
                "ok": True,
                "version": VERSION,
                "database": connection.vendor,
                "embeddings": get_provider().model_id,
            }
        )


class SectorViewSet(viewsets.ViewSet):
    def list(self, request: Request) -> Response:
        return Response(
            {
                "sectors": list(SECTORS),
                "configs": {
                    name: {
                        "description": s.description,
                        "decay_lambda": s.decay_lambda,
                        "weight": s.weight,
                    }
                    for name, s in SECTORS.items()
                },
            }
        )
