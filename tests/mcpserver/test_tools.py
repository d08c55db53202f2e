"""The MCP tools through the SDK's client, over stdio and streamable HTTP: they store, find,
summarise, list and delete a user's memories as the HTTP API does, with its keys and scoping,
and answer bad input with the HTTP API's own messages."""

from __future__ import annotations

import anyio
import httpx2
import pytest
from django.db import connections
from mcp import MCPError
from rest_framework.test import APIClient

from access.services import api_key_create, api_key_revoke
from memories import services
from memories.models import Memory
from tests.live import API_KEY

pytestmark = pytest.mark.live

TOOLS = {
    "store_memory",
    "search_memories",
    "get_user_summary",
    "get_context",
    "list_memories",
    "delete_memory",
}


@pytest.fixture
def http(settings) -> APIClient:
    """The HTTP API in this process, with the live servers' admin key."""
    settings.OM_API_KEYS = [API_KEY]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {API_KEY}")
    return client


def remember(content: str, user_id: str | None) -> str:
    result = services.memory_create(content=content, user_id=user_id, tags=[], metadata={})
    return str(result.memory.id)


def test_store_then_find_summarise_list_and_delete(mcp, http):
    server = mcp()
    bobs = remember("Bob is allergic to peanuts and shellfish", "bob")
    seen: dict = {}

    async def scenario():
        async with server.session() as s:
            seen["tools"] = (await s.client.list_tools()).tools
            seen["added"] = await s.ok(
                "store_memory",
                content="Alice is allergic to peanuts",
                user_id="alice",
                tags=["health"],
                metadata={"source": "chat"},
            )
            seen["other"] = await s.ok(
                "store_memory", content="Alice plays the cello on Sundays", user_id="alice"
            )
            seen["again"] = await s.ok(
                "store_memory", content="Alice is allergic to peanuts", user_id="alice"
            )
            seen["found"] = await s.ok(
                "search_memories", query="peanut allergy", user_id="alice", k=5
            )
            seen["summary"] = await s.ok("get_user_summary", user_id="alice")
            seen["context"] = await s.ok(
                "get_context", user_id="alice", query="what should I cook?"
            )
            seen["listed"] = await s.ok("list_memories", user_id="alice")
            seen["deleted"] = await s.ok("delete_memory", memory_id=seen["other"]["id"])
            seen["after"] = await s.ok("list_memories", user_id="alice")
        # A client of the 2025 protocol (an initialize handshake), as most still are.
        async with server.session(mode="legacy") as s:
            seen["legacy"] = s.client.protocol_version
            seen["recalled"] = await s.ok("search_memories", query="peanuts", user_id="alice")

    server.run(scenario)

    tools = {tool.name: tool for tool in seen["tools"]}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert len(tool.description) > 60
        assert tool.input_schema["type"] == "object"
        assert all(p.get("description") for p in tool.input_schema["properties"].values())
    assert tools["store_memory"].input_schema["required"] == ["content"]
    assert tools["search_memories"].input_schema["properties"]["k"]["type"] == "integer"
    assert tools["delete_memory"].annotations.destructive_hint is True
    assert tools["search_memories"].annotations.read_only_hint is True

    added, other = seen["added"]["id"], seen["other"]["id"]
    stored = Memory.objects.get(pk=added)
    assert (stored.user_id, stored.content, stored.metadata) == (
        "alice",
        "Alice is allergic to peanuts",
        {"source": "chat"},
    )
    assert [t.name for t in stored.tags.all()] == ["health"]
    assert seen["again"] == {**seen["added"], "deduplicated": True}

    matches = seen["found"]["matches"]
    assert matches[0]["id"] == added
    assert {m["user_id"] for m in matches} == {"alice"}

    summary = seen["summary"]
    assert summary["user_id"] == "alice"
    assert "peanuts" in summary["summary"]
    assert summary["reflection_count"] >= 1
    # The HTTP API's shape (its text has moved on since: a memory was deleted).
    assert set(summary) == set(http.get("/users/alice/summary").json())

    context = seen["context"]
    assert context["user_id"] == "alice"
    assert context["context"].startswith("User profile: ")
    assert added in {m["id"] for m in context["matches"]}

    assert [m["id"] for m in seen["listed"]["items"]] == [other, added]
    assert seen["listed"]["items"][1]["tags"] == ["health"]

    assert seen["deleted"] == {"ok": True, "id": other}
    assert not Memory.objects.filter(pk=other).exists()
    assert [m["id"] for m in seen["after"]["items"]] == [added]
    assert Memory.objects.filter(pk=bobs).exists()

    assert seen["legacy"].startswith("2025-")
    assert [m["id"] for m in seen["recalled"]["matches"]] == [added]


def test_a_scoped_key_reaches_only_its_user(mcp, settings):
    server = mcp()
    bobs = remember("Bob keeps bees", "bob")
    alice, alice_key = api_key_create(user_id="alice")
    refused = "this API key may only access user alice"

    settings.OM_API_KEYS = [API_KEY]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {alice_key}")
    response = client.post("/memory/add", {"content": "x", "user_id": "bob"}, format="json")
    http_answer = (response.status_code, response.json())

    def revoke() -> None:
        api_key_revoke(key_id=alice.pk)
        connections.close_all()  # this thread's

    async def scenario():
        async with server.session(alice_key) as s:
            own = await s.ok("store_memory", content="Alice keeps bees too")
            errors = [
                await s.error("store_memory", content="Bob sold the hive", user_id="bob"),
                await s.error("search_memories", query="bees", user_id="bob"),
                await s.error("get_user_summary", user_id="bob"),
                await s.error("get_context", user_id="bob", query="bees"),
                await s.error("list_memories", user_id="bob"),
            ]
            not_found = await s.error("delete_memory", memory_id=bobs)
            found = await s.ok("search_memories", query="keeps bees")
            listed = await s.ok("list_memories")
            summary = await s.ok("get_user_summary")
            # Keys are checked on every call: one revoked mid-session stops working.
            await anyio.to_thread.run_sync(revoke)
            try:
                revoked = await s.error("list_memories")
            except MCPError:  # over HTTP the request itself is refused, checked below
                revoked = None
            return own, errors, not_found, found, listed, summary, revoked

    own, errors, not_found, found, listed, summary, revoked = server.run(scenario)

    # The HTTP API answered the same key with the same message.
    assert http_answer == (403, {"err": refused})

    assert errors == [refused] * 5
    assert not_found == "memory not found"
    assert Memory.objects.get(pk=own["id"]).user_id == "alice"
    assert list(Memory.objects.filter(user_id="bob").values_list("content", flat=True)) == [
        "Bob keeps bees"
    ]
    assert [m["id"] for m in found["matches"]] == [own["id"]]
    assert [m["id"] for m in listed["items"]] == [own["id"]]
    assert summary["user_id"] == "alice"

    if server.transport == "stdio":
        assert revoked == "invalid api key"
    else:
        response = httpx2.post(
            server.url, json={}, headers={"Authorization": f"Bearer {alice_key}"}
        )
        assert (response.status_code, response.json()) == (403, {"err": "invalid api key"})


# Each tool call next to the HTTP request carrying the same bad input.
BAD_INPUT = [
    (("store_memory", {"content": ""}), ("post", "/memory/add", {"content": ""})),
    (("store_memory", {"content": 7}), ("post", "/memory/add", {"content": 7})),
    (
        ("store_memory", {"content": "x", "user_id": "no spaces"}),
        ("post", "/memory/add", {"content": "x", "user_id": "no spaces"}),
    ),
    (
        ("store_memory", {"content": "x", "tags": ["  "]}),
        ("post", "/memory/add", {"content": "x", "tags": ["  "]}),
    ),
    (
        ("store_memory", {"content": "x", "metadata": ["not", "an", "object"]}),
        ("post", "/memory/add", {"content": "x", "metadata": ["not", "an", "object"]}),
    ),
    (
        ("search_memories", {"query": "x", "k": 0}),
        ("post", "/memory/query", {"query": "x", "k": 0}),
    ),
    (
        ("search_memories", {"query": "x", "sector": "gossip"}),
        ("post", "/memory/query", {"query": "x", "filters": {"sector": "gossip"}}),
    ),
    (
        ("search_memories", {"query": "x", "min_score": 2}),
        ("post", "/memory/query", {"query": "x", "filters": {"min_score": 2}}),
    ),
    (("get_context", {}), ("post", "/memory/context", {})),
    (("get_user_summary", {"user_id": "nobody"}), ("get", "/users/nobody/summary", None)),
    (("delete_memory", {"memory_id": "not-an-id"}), ("delete", "/memory/not-an-id", None)),
]


def test_bad_input_is_a_tool_error_with_the_http_message(mcp, http, settings):
    server = mcp()
    expected = []
    for _, (method, path, body) in BAD_INPUT:
        response = getattr(http, method)(path, body, format="json")
        assert 400 <= response.status_code < 500, response.content
        expected.append(response.json()["err"])

    async def scenario():
        async with server.session() as s:
            answers = [await s.call(tool, **args) for (tool, args), _ in BAD_INPUT]
            # Outside the HTTP API's rules: paging under the tool's own names, and a required
            # argument left out (the SDK checks those against the tool's schema).
            paging = await s.error("list_memories", user_id="alice", limit=0)
            missing = await s.call("store_memory", user_id="alice")
            return answers, paging, missing

    answers, paging, missing = server.run(scenario)

    assert [a.text for a in answers] == expected
    assert all(a.is_error and a.body == {"err": a.text} for a in answers)
    assert paging == f"limit must be between 1 and {settings.OM_MAX_LIMIT}"
    assert missing.is_error
    assert "content" in missing.text
    assert not Memory.objects.exists()


def test_an_open_server_needs_no_key(mcp):
    server = mcp(OM_API_KEY="")

    async def scenario():
        async with server.session(key=None) as s:
            added = await s.ok("store_memory", content="Carol swims at dawn", user_id="carol")
            listed = await s.ok("list_memories", user_id="carol")
            return added, listed

    added, listed = server.run(scenario)

    assert [m["id"] for m in listed["items"]] == [added["id"]]
