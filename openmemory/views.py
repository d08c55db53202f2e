"""Server-wide endpoints: the sector catalogue."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from memories.sectors import SECTORS


class SectorsView(APIView):
    @extend_schema(
        responses={
            200: inline_serializer(
                "Sectors",
                {
                    "sectors": serializers.ListField(child=serializers.CharField()),
                    "configs": serializers.DictField(),
                },
            )
        }
    )
    def get(self, request: Request) -> Response:
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
