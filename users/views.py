"""HTTP API for users: one user's memories and summary, and prompt context (/memory/context)."""

from __future__ import annotations

import json

from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from access.auth import scope_of
from core.parsers import parse
from core.validation import clean_user_id
from memories.representation import memory_item
from memories.selectors import memories_for_export
from memories.serializers import MemoryOutSerializer, PageSerializer
from users import selectors, services
from users.representation import context_item, summary_item
from users.serializers import ContextOutSerializer, ContextSerializer


def _summary_fields() -> dict[str, serializers.Field]:
    return {
        "user_id": serializers.CharField(),
        "summary": serializers.CharField(),
        "reflection_count": serializers.IntegerField(),
        "updated_at": serializers.IntegerField(allow_null=True),
    }


SummaryOut = inline_serializer("Summary", _summary_fields())
RegeneratedOut = inline_serializer(
    "RegeneratedSummary", {"ok": serializers.BooleanField(), **_summary_fields()}
)
UserMemoriesOut = inline_serializer(
    "UserMemories",
    {"user_id": serializers.CharField(), "items": MemoryOutSerializer(many=True)},
)
DeletedUserMemoriesOut = inline_serializer(
    "DeletedUserMemories",
    {
        "ok": serializers.BooleanField(),
        "user_id": serializers.CharField(),
        "deleted": serializers.IntegerField(),
    },
)
QueuedOut = inline_serializer(
    "Queued", {"ok": serializers.BooleanField(), "queued": serializers.IntegerField()}
)


class UserViewSet(viewsets.ViewSet):
    lookup_field = "user_id"
    lookup_value_regex = "[^/]+"

    @extend_schema(request=None, responses={200: QueuedOut})
    @action(detail=False, methods=["post"], url_path="summaries/regenerate-all")
    def regenerate_all(self, request: Request) -> Response:
        scope_of(request).require_admin()
        return Response({"ok": True, "queued": services.user_summaries_regenerate_all()})

    @extend_schema(methods=["GET"], parameters=[PageSerializer], responses={200: UserMemoriesOut})
    @extend_schema(methods=["DELETE"], responses={200: DeletedUserMemoriesOut})
    @action(detail=True, methods=["get", "delete"], url_path="memories")
    def memories(self, request: Request, user_id: str) -> Response:
        user_id = scope_of(request).check_user(clean_user_id(user_id))
        if request.method == "DELETE":
            deleted = services.user_delete_memories(user_id=user_id)
            return Response({"ok": True, "user_id": user_id, "deleted": deleted})
        page = parse(PageSerializer, request.query_params)
        items = selectors.user_memories(user_id=user_id, limit=page["l"], offset=page["u"])
        return Response({"user_id": user_id, "items": [memory_item(m) for m in items]})

    @extend_schema(
        responses={
            (200, "application/x-ndjson"): OpenApiResponse(
                MemoryOutSerializer, description="one memory per line (JSON Lines)"
            )
        }
    )
    @action(detail=True, methods=["get"], url_path="export")
    def export(self, request: Request, user_id: str) -> StreamingHttpResponse:
        user_id = scope_of(request).check_user(clean_user_id(user_id))
        lines = (
            json.dumps(memory_item(memory), ensure_ascii=False) + "\n"
            for memory in memories_for_export(user_id=user_id)
        )
        response = StreamingHttpResponse(lines, content_type="application/x-ndjson")
        response["Content-Disposition"] = f'attachment; filename="{user_id}.jsonl"'
        return response

    @extend_schema(responses={200: SummaryOut})
    @action(detail=True, methods=["get"], url_path="summary")
    def summary(self, request: Request, user_id: str) -> Response:
        user_id = scope_of(request).check_user(clean_user_id(user_id))
        return Response(summary_item(services.user_summary_fresh(user_id=user_id)))

    @extend_schema(request=None, responses={200: RegeneratedOut})
    @action(detail=True, methods=["post"], url_path="summary/regenerate")
    def regenerate(self, request: Request, user_id: str) -> Response:
        user_id = scope_of(request).check_user(clean_user_id(user_id))
        summary = services.user_summary_regenerate(user_id=user_id)
        return Response({"ok": True, **summary_item(summary)})


# POST /memory/context: a user's summary and relevant memories, ready for a prompt. (No
# docstring: drf-spectacular would publish it as the operation's description.)
class MemoryContextView(APIView):
    @extend_schema(request=ContextSerializer, responses={200: ContextOutSerializer})
    def post(self, request: Request) -> Response:
        data = parse(ContextSerializer, request.data)
        user_id = scope_of(request).check_user(data["user_id"])
        context = services.user_context(user_id=user_id, query=data.get("query"), k=data["k"])
        return Response(context_item(context))
