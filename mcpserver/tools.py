"""The MCP tools: the HTTP API's services and selectors, with its validation and scoping."""

# No `from __future__ import annotations`: the SDK reads the parameter annotations (JSON
# schemas built by calls) at registration.
import asyncio
import json
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Annotated, Any

from django.conf import settings
from django.db import close_old_connections
from mcp.server.mcpserver import Context, MCPServer
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field, WithJsonSchema
from rest_framework import serializers

from access.auth import scope_for_key
from access.scope import Scope
from core.exceptions import err_exception_handler
from core.scope import NOT_GIVEN
from core.validation import USER_ID_RE, clean_user_id
from memories import selectors, services
from memories.representation import created_item, match_item, memory_item
from memories.sectors import SECTOR_NAMES
from memories.serializers import MemoryAddSerializer, MemoryQuerySerializer, page_field
from users import selectors as user_selectors
from users import services as user_services
from users.representation import context_item, summary_item
from users.serializers import ContextSerializer

#: Where the HTTP view leaves the Scope of the key that made the request (WSGI environ key,
#: which the SDK's Starlette request carries as scope["wsgi_environ"]).
CALLER = "openmemory.mcp_caller"

INSTRUCTIONS = """\
OpenMemory is long-term memory about the people you talk with.
- At the start of a conversation (or a new topic), call get_context with the user's message as
  `query` and read the profile and memories it returns before answering.
- When the user shares a durable fact, preference, goal or event, call store_memory with one
  self-contained sentence per fact.
- Use search_memories to look something up, list_memories to browse, get_user_summary for
  the profile alone, delete_memory when the user asks you to forget something.
With a key that belongs to one user, leave user_id out: every tool acts for that user."""

# The ORM is synchronous: tools run in these threads, each keeping its own database
# connection, opened and retired as Django does around an HTTP request.
_DB_THREADS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="mcp-tool")

#: A tool's answer: the HTTP API's JSON body, as structured content (and as text).
Result = Annotated[CallToolResult, dict[str, Any]]


def _schema(schema: dict, description: str) -> Any:
    """A parameter typed for the client by `schema` but checked by the HTTP API's own
    serializers, so that a bad value gets the same message as over HTTP."""
    return Annotated[Any, WithJsonSchema(schema), Field(description=description)]


def _user_id(description: str) -> Any:
    return _schema({"type": "string", "pattern": USER_ID_RE.pattern, "maxLength": 128}, description)


USER_FOR_KEY = (
    " Leave it out with a key that belongs to one user: it is that user; naming another user"
    " is refused."
)
TagsParam = _schema(
    {"type": "array", "items": {"type": "string", "maxLength": 64}, "maxItems": 32},
    'Short labels, e.g. ["travel", "food"].',
)
KParam = _schema(
    {"type": "integer", "minimum": 1, "maximum": settings.OM_MAX_K},
    "How many memories to return at most.",
)


class _PageSerializer(serializers.Serializer):
    """The HTTP API's `l`/`u` paging rules, under the tool's own parameter names."""

    limit = page_field("limit", 100, 1, settings.OM_MAX_LIMIT)
    offset = page_field("offset", 0, 0, 10_000_000)


def _parse(serializer_class: type[serializers.Serializer], data: dict) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _given(**values: Any) -> dict:
    """The arguments a caller sent: an omitted (None) one is left to the serializer's default."""
    return {name: value for name, value in values.items() if value is not None}


def _named_user(scope: Scope, user_id: object) -> str:
    """The user a per-user tool acts for: the one named, or a user-scoped key's own."""
    if user_id is None and scope.user_id is not None:
        return scope.user_id
    return scope.check_user(clean_user_id(user_id))


def error_message(exc: Exception) -> str:
    """What the HTTP API would answer as `{"err": ...}` for this error."""
    return err_exception_handler(exc, {}).data["err"]


def _caller(ctx: Context) -> Scope:
    request = ctx.request_context.request
    if request is not None:
        # Streamable HTTP: the view authenticated the request as the HTTP API does.
        return request.scope["wsgi_environ"][CALLER]
    return scope_for_key(ctx.request_context.lifespan_context["api_key"])


def _result(body: dict, *, is_error: bool = False) -> CallToolResult:
    text = json.dumps(body, ensure_ascii=False)
    return CallToolResult(
        content=[TextContent(type="text", text=body["err"] if is_error else text)],
        structured_content=body,
        is_error=is_error,
    )


async def _run(ctx: Context, work: Callable[[Scope], dict]) -> Result:
    """`work(scope)` in a database thread. An error is a tool error whose text is the HTTP
    API's message for it, and whose structured content is the HTTP body, `{"err": ...}`."""

    def call() -> CallToolResult:
        close_old_connections()
        try:
            return _result(work(_caller(ctx)))
        except Exception as exc:
            return _result({"err": error_message(exc)}, is_error=True)
        finally:
            close_old_connections()

    return await asyncio.get_running_loop().run_in_executor(_DB_THREADS, call)


async def store_memory(
    content: _schema(
        {"type": "string", "minLength": 1, "maxLength": settings.OM_MAX_CONTENT_CHARS},
        'The memory, as one self-contained sentence, e.g. "Alice is allergic to peanuts."',
    ),
    ctx: Context,
    user_id: _user_id(
        "Whose memory it is. With an admin key, leaving it out stores a shared memory that"
        " belongs to no user." + USER_FOR_KEY
    ) = None,
    tags: TagsParam = None,
    metadata: _schema(
        {"type": "object", "additionalProperties": True},
        "Any JSON object kept with the memory (its source, ids of your own...).",
    ) = None,
) -> Result:
    def work(scope: Scope) -> dict:
        raw = _given(content=content, tags=tags, metadata=metadata, user_id=user_id)
        data = _parse(MemoryAddSerializer, raw)
        data["user_id"] = scope.for_write(data["user_id"] if "user_id" in raw else NOT_GIVEN)
        return created_item(services.memory_create(**data))

    return await _run(ctx, work)


async def search_memories(
    query: _schema(
        {"type": "string", "minLength": 1, "maxLength": settings.OM_MAX_CONTENT_CHARS},
        "What to look for, in natural language (the user's question works well).",
    ),
    ctx: Context,
    user_id: _user_id(
        "Whose memories to search. With an admin key, leaving it out searches every user's."
        + USER_FOR_KEY
    ) = None,
    k: KParam = 8,
    sector: _schema(
        {"type": "string", "enum": list(SECTOR_NAMES)},
        "Only memories of this kind: episodic (events), semantic (facts), procedural (how-to),"
        " emotional (feelings), reflective (insights).",
    ) = None,
    min_score: _schema(
        {"type": "number", "minimum": 0, "maximum": 1},
        "Leave out matches scoring below this (scores are in [0, 1], higher is better).",
    ) = None,
    tags: TagsParam = None,
) -> Result:
    def work(scope: Scope) -> dict:
        filters = _given(user_id=user_id, sector=sector, min_score=min_score, tags=tags)
        data = _parse(MemoryQuerySerializer, _given(query=query, k=k, filters=filters))
        matches = selectors.memory_query(
            query=data["query"],
            k=data["k"],
            user_id=scope.for_read(data["filters"].get("user_id", NOT_GIVEN)),
            sector=data["filters"].get("sector"),
            min_score=data["filters"].get("min_score"),
            tags=data["filters"].get("tags"),
        )
        body = {"query": data["query"], "matches": [match_item(m) for m in matches]}
        services.memories_note_retrieved(memory_ids=[m.memory.pk for m in matches])
        return body

    return await _run(ctx, work)


async def get_user_summary(
    ctx: Context,
    user_id: _user_id("The user whose profile to return." + USER_FOR_KEY) = None,
) -> Result:
    def work(scope: Scope) -> dict:
        user = _named_user(scope, user_id)
        return summary_item(user_services.user_summary_fresh(user_id=user))

    return await _run(ctx, work)


async def get_context(
    ctx: Context,
    user_id: _user_id("The user you are talking with." + USER_FOR_KEY) = None,
    query: _schema(
        {"type": "string", "maxLength": settings.OM_MAX_CONTENT_CHARS},
        "The user's current message or topic: the memories most relevant to it are added."
        " Leave it out for the profile alone.",
    ) = None,
    k: KParam = 8,
) -> Result:
    def work(scope: Scope) -> dict:
        raw = _given(user_id=user_id, query=query, k=k)
        if user_id is None and scope.user_id is not None:
            raw["user_id"] = scope.user_id
        data = _parse(ContextSerializer, raw)
        user = scope.check_user(data["user_id"])
        context = user_services.user_context(user_id=user, query=data.get("query"), k=data["k"])
        return context_item(context)

    return await _run(ctx, work)


async def list_memories(
    ctx: Context,
    user_id: _user_id("The user whose memories to list." + USER_FOR_KEY) = None,
    limit: _schema(
        {"type": "integer", "minimum": 1, "maximum": settings.OM_MAX_LIMIT},
        "How many memories to return at most.",
    ) = 100,
    offset: _schema(
        {"type": "integer", "minimum": 0}, "How many to skip, to page through a long list."
    ) = 0,
) -> Result:
    def work(scope: Scope) -> dict:
        user = _named_user(scope, user_id)
        page = _parse(_PageSerializer, _given(limit=limit, offset=offset))
        items = user_selectors.user_memories(
            user_id=user, limit=page["limit"], offset=page["offset"]
        )
        return {"user_id": user, "items": [memory_item(m) for m in items]}

    return await _run(ctx, work)


async def delete_memory(
    memory_id: _schema({"type": "string", "format": "uuid"}, "The id of the memory to delete."),
    ctx: Context,
) -> Result:
    def work(scope: Scope) -> dict:
        services.memory_delete(memory_id=str(memory_id), within=scope.visible)
        return {"ok": True, "id": str(memory_id)}

    return await _run(ctx, work)


def _hints(title: str, *, read_only: bool, destructive: bool = False) -> ToolAnnotations:
    return ToolAnnotations(
        title=title,
        read_only_hint=read_only,
        destructive_hint=destructive,
        idempotent_hint=read_only or destructive,
        open_world_hint=False,
    )


TOOLS: list[tuple[Callable, str, ToolAnnotations]] = [
    (
        store_memory,
        "Remember something about a user for later conversations: a fact, preference, goal or"
        " event they shared. Store one self-contained sentence per call. Storing the same text"
        " again for the same user returns the existing memory (deduplicated: true). Returns"
        " the memory's id.",
        _hints("Store a memory", read_only=False),
    ),
    (
        search_memories,
        "Find the stored memories most relevant to a question or topic, best first, each with"
        " a score in [0, 1]. Use it to recall what you know before answering.",
        _hints("Search memories", read_only=True),
    ),
    (
        get_user_summary,
        "Get the profile summary built from all of a user's memories. Fails with 'user not"
        " found' when nothing is stored for the user.",
        _hints("Get a user's summary", read_only=True),
    ),
    (
        get_context,
        "Get prompt-ready context about the user you are talking with: their profile summary"
        " plus the memories most relevant to their current message, as one text block"
        " (`context`) to read before answering. Works for a user with no memories yet (an"
        " empty profile).",
        _hints("Get context for a prompt", read_only=True),
    ),
    (
        list_memories,
        "List a user's memories, newest first, with their ids, tags and metadata. Page with"
        " limit and offset.",
        _hints("List a user's memories", read_only=True),
    ),
    (
        delete_memory,
        "Delete one memory by its id (from store_memory, search_memories or list_memories),"
        " e.g. when the user asks you to forget something. It cannot be undone.",
        _hints("Delete a memory", read_only=False, destructive=True),
    ),
]


def build_server(*, api_key: str | None = None) -> MCPServer:
    """The MCP server with every tool. `api_key` is the stdio caller's key; over HTTP each
    request brings its own and `api_key` is unused."""

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[dict]:
        yield {"api_key": api_key}

    server = MCPServer(
        "openmemory",
        title="OpenMemory",
        instructions=INSTRUCTIONS,
        log_level="WARNING",
        lifespan=lifespan,
    )
    for function, description, annotations in TOOLS:
        server.add_tool(function, description=description, annotations=annotations)
    return server
