"""The SDK's own MCP client, connected over stdio (`manage.py mcp`) or streamable HTTP (/mcp
on a live gunicorn), both on the test database."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from tests.live import API_KEY, ROOT, database_url


@dataclass
class Answer:
    """A tool's answer: its structured content, or the error text of a tool error."""

    is_error: bool
    body: dict
    text: str


@dataclass
class Session:
    client: Client

    async def call(self, tool: str, **arguments: Any) -> Answer:
        result = await self.client.call_tool(tool, arguments)
        text = result.content[0].text if result.content else ""
        return Answer(result.is_error, result.structured_content or {}, text)

    async def ok(self, tool: str, **arguments: Any) -> dict:
        answer = await self.call(tool, **arguments)
        assert not answer.is_error, answer.text
        return answer.body

    async def error(self, tool: str, **arguments: Any) -> str:
        answer = await self.call(tool, **arguments)
        assert answer.is_error, answer.body
        return answer.text


@dataclass
class Mcp:
    """Opens MCP sessions over one transport; `env` is the server's environment."""

    transport: str
    env: dict[str, str] = field(default_factory=dict)
    url: str = ""

    @asynccontextmanager
    async def session(
        self, key: str | None = API_KEY, mode: str = "auto"
    ) -> AsyncIterator[Session]:
        if self.transport == "http":
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            # httpx waits 5 s by default; the SDK's own client 30 s. A worker's first MCP request
            # loads the SDK (about a second).
            async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
                transport = streamable_http_client(self.url, http_client=http)
                async with Client(transport, mode=mode) as client:
                    yield Session(client)
        else:
            server = StdioServerParameters(
                command=sys.executable,
                args=["manage.py", "mcp"],
                cwd=ROOT,
                env={**self.env, "OM_MCP_API_KEY": key or ""},
            )
            async with Client(server, mode=mode) as client:
                yield Session(client)

    def run(self, scenario: Callable[..., Any], *args: Any) -> Any:
        """Runs an async scenario to its end (the tests themselves stay synchronous, so that
        they may use the ORM between sessions)."""
        return anyio.run(scenario, *args)


def server_env(**env: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k != "CELERY_BROKER_URL"}
    return {**base, "DATABASE_URL": database_url(), "OM_API_KEY": API_KEY, **env}


@pytest.fixture(params=["stdio", "http"])
def mcp(request, transactional_db) -> Callable[..., Mcp]:
    """mcp(**env) -> an Mcp for this test's transport, its server run with `env` (an HTTP
    server is started as a live gunicorn and stopped after the test)."""

    deploy = request.getfixturevalue("deploy") if request.param == "http" else None

    def _mcp(**env: str) -> Mcp:
        if deploy is not None:
            return Mcp("http", url=f"{deploy(**env).base_url}/mcp")
        return Mcp("stdio", env=server_env(**env))

    return _mcp
