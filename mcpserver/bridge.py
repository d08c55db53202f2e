"""The SDK's streamable HTTP transport (ASGI) inside this WSGI process: one event loop thread
per process runs it, stateless and answering plain JSON, and each request is handed over
through a2wsgi."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable

from a2wsgi import ASGIMiddleware
from django.conf import settings
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings

from mcpserver.tools import build_server

# How long a request waits, once its answer is out, for the SDK to wind the request down.
WIND_DOWN_SECONDS = 10.0


class Bridge:
    """Stateless (no session survives a request, so any gunicorn worker or thread can take
    any request) and JSON responses (no server-sent event stream holds a worker thread)."""

    def __init__(self, server: MCPServer) -> None:
        server.streamable_http_app(
            stateless_http=True,
            json_response=True,
            max_request_body_size=settings.OM_MAX_BODY_BYTES,
            # Django has checked the Host header (ALLOWED_HOSTS) and the view the API key.
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        manager = server.session_manager
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, name="mcp-http", daemon=True).start()
        ready = threading.Event()

        async def serve() -> None:
            async with manager.run():
                ready.set()
                await asyncio.Event().wait()  # for the life of the process

        self._serving = asyncio.run_coroutine_threadsafe(serve(), self.loop)
        if not ready.wait(timeout=30):
            raise RuntimeError("the MCP session manager did not start")
        self.app = ASGIMiddleware(
            manager.handle_request, wait_time=WIND_DOWN_SECONDS, loop=self.loop
        )

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        return self.app(environ, start_response)


_bridge: Bridge | None = None
_lock = threading.Lock()


def get_bridge() -> Bridge:
    """The process's bridge, started on the first MCP request (after gunicorn's fork, so a
    preloading master never starts a thread its workers would lack)."""
    global _bridge
    if _bridge is None:
        with _lock:
            if _bridge is None:
                _bridge = Bridge(build_server())
    return _bridge
