"""HTTP API for memories: parse with a serializer, call a service or selector, shape JSON."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from access.auth import scope_of
from core.parsers import parse
from core.scope import NOT_GIVEN
from memories import selectors, services
from memories.representation import created_item, match_item, memory_item
from memories.sectors import SECTORS
from memories.serializers import (
    AddedSerializer,
    BatchAddedSerializer,
    DeletedSerializer,
    MemoryAddSerializer,
    MemoryBatchSerializer,
    MemoryListOutSerializer,
    MemoryListSerializer,
    MemoryOutSerializer,
    MemoryQuerySerializer,
    MemoryUpdateSerializer,
    QueryResultSerializer,
    ReinforcedSerializer,
    ReinforceSerializer,
    UpdatedMemorySerializer,
)


def request_user(raw: object, data: dict) -> object:
    """The user_id a body named (None included), or NOT_GIVEN when it named none."""
    return data["user_id"] if isinstance(raw, dict) and "user_id" in raw else NOT_GIVEN


class MemoryViewSet(viewsets.ViewSet):
    lookup_field = "memory_id"
    lookup_value_regex = "[^/]+"

    @extend_schema(request=MemoryAddSerializer, responses={200: AddedSerializer})
    @action(detail=False, methods=["post"], url_path="add")
    def add(self, request: Request) -> Response:
        data = parse(MemoryAddSerializer, request.data)
        data["user_id"] = scope_of(request).for_write(request_user(request.data, data))
        result = services.memory_create(**data)
        # 200 whether stored or deduplicated, as upstream OpenMemory answers: its clients and
        # scripts check for 200.
        return Response(created_item(result))

    @extend_schema(request=MemoryBatchSerializer, responses={201: BatchAddedSerializer})
    @action(detail=False, methods=["post"], url_path="add/batch")
    def add_batch(self, request: Request) -> Response:
        data = parse(MemoryBatchSerializer, request.data)
        scope = scope_of(request)
        items = [
            services.MemoryInput(**{**item, "user_id": scope.for_write(request_user(raw, item))})
            for raw, item in zip(request.data["items"], data["items"], strict=True)
        ]
        results = services.memory_create_batch(items=items)
        return Response(
            {
                "ids": [str(r.memory.id) for r in results],
                "items": [created_item(r) for r in results],
            },
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(request=MemoryQuerySerializer, responses={200: QueryResultSerializer})
    @action(detail=False, methods=["post"], url_path="query")
    def query(self, request: Request) -> Response:
        data = parse(MemoryQuerySerializer, request.data)
        filters = data["filters"]
        requested = filters.get("user_id", data.get("user_id", NOT_GIVEN))
        matches = selectors.memory_query(
            query=data["query"],
            k=data["k"],
            user_id=scope_of(request).for_read(requested),
            sector=filters.get("sector"),
            min_score=filters.get("min_score"),
            tags=filters.get("tags"),
        )
        # The response shows each memory as it was found, before this retrieval's boost.
        body = {"query": data["query"], "matches": [match_item(m) for m in matches]}
        services.memories_note_retrieved(memory_ids=[m.memory.pk for m in matches])
        return Response(body)

    @extend_schema(parameters=[MemoryListSerializer], responses={200: MemoryListOutSerializer})
    @action(detail=False, methods=["get"], url_path="all")
    def all(self, request: Request) -> Response:
        data = parse(MemoryListSerializer, request.query_params)
        memories = selectors.memory_list(
            user_id=scope_of(request).for_read(data.get("user_id", NOT_GIVEN)),
            sector=data.get("sector"),
            limit=data["l"],
            offset=data["u"],
        )
        return Response({"items": [memory_item(m) for m in memories]})

    @extend_schema(request=ReinforceSerializer, responses={200: ReinforcedSerializer})
    @action(detail=False, methods=["post"], url_path="reinforce")
    def reinforce(self, request: Request) -> Response:
        data = parse(ReinforceSerializer, request.data)
        memory = services.memory_reinforce(
            memory_id=str(data["id"]), boost=data["boost"], within=scope_of(request).visible
        )
        return Response({"ok": True, "id": str(memory.id), "salience": round(memory.salience, 6)})

    @extend_schema(responses={200: MemoryOutSerializer})
    def retrieve(self, request: Request, memory_id: str) -> Response:
        memory = selectors.memory_get(memory_id=memory_id, within=scope_of(request).visible)
        return Response(memory_item(memory))

    @extend_schema(request=MemoryUpdateSerializer, responses={200: UpdatedMemorySerializer})
    def partial_update(self, request: Request, memory_id: str) -> Response:
        data = parse(MemoryUpdateSerializer, request.data)
        memory = services.memory_update(
            memory_id=memory_id, within=scope_of(request).visible, **data
        )
        # `updated` is what upstream OpenMemory's clients read.
        return Response({"ok": True, "updated": True, **memory_item(memory)})

    @extend_schema(responses={200: DeletedSerializer})
    def destroy(self, request: Request, memory_id: str) -> Response:
        services.memory_delete(memory_id=memory_id, within=scope_of(request).visible)
        return Response({"ok": True, "id": memory_id})


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
