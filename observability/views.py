"""Operators' endpoints: /health (public) and /metrics (Prometheus, admin key or token)."""

from __future__ import annotations

import hmac
import os

from django.conf import settings
from django.db import connection
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema, inline_serializer
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector
from rest_framework import authentication, exceptions, permissions, serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from access.auth import ApiKeyAuthentication, presented_key
from memories.embeddings import get_provider
from memories.selectors import memories_awaiting_embedding, memories_awaiting_vector_index
from observability.collectors import add_to
from users.selectors import summaries_queued

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
                    "vectors_pending": serializers.IntegerField(
                        help_text="memories stored but not yet in the approximate vector "
                        "index (PostgreSQL; it takes them in within moments; searches rank "
                        "them exactly meanwhile)"
                    ),
                    "summaries_queued": serializers.IntegerField(
                        help_text="user summaries whose regeneration is queued and not yet "
                        "done (the background backlog, for instance after an import)"
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
                "vectors_pending": memories_awaiting_vector_index(),
                "summaries_queued": summaries_queued(),
            }
        )


class MetricsScraper:
    """The caller behind OM_METRICS_TOKEN: may read /metrics and nothing else."""

    is_authenticated = True


class MetricsTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[MetricsScraper, str] | None:
        token = settings.OM_METRICS_TOKEN
        presented = presented_key(request)
        if token and presented and hmac.compare_digest(presented.encode(), token.encode()):
            return (MetricsScraper(), presented)
        return None  # not the token: the API keys are tried next

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="openmemory"'


class MayScrape(permissions.BasePermission):
    """OM_METRICS_TOKEN or an admin key. On a server without keys the API is open, and so
    are the metrics, unless OM_METRICS_TOKEN asks for the token."""

    def has_permission(self, request: Request, view) -> bool:
        client = request.user
        if isinstance(client, MetricsScraper):
            return True
        if client is None or (settings.OM_METRICS_TOKEN and not request.auth):
            raise exceptions.NotAuthenticated("metrics need an admin API key or OM_METRICS_TOKEN")
        if not client.scope.is_admin:
            raise exceptions.PermissionDenied("metrics need an admin API key")
        return True


class MetricsView(APIView):
    authentication_classes = [MetricsTokenAuthentication, ApiKeyAuthentication]
    permission_classes = [MayScrape]

    @extend_schema(exclude=True)  # Prometheus text, for scrapers rather than API clients
    def get(self, request: Request) -> HttpResponse:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # Several gunicorn workers: each wrote its counters to files in that directory;
            # a registry built per scrape adds them up (prometheus_client's multiprocess
            # mode, set up by openmemory/gunicorn_conf.py).
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            add_to(registry)
        else:
            registry = REGISTRY
        return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
