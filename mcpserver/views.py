"""POST /mcp: MCP's streamable HTTP transport, behind the HTTP API's keys and rate limits."""

from __future__ import annotations

import io

from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request
from rest_framework.views import APIView

from access.auth import HasApiKey, scope_of

# Set by the transport itself or by hop-by-hop rules, not copied from the SDK's answer.
_NOT_COPIED = {"content-length", "connection", "transfer-encoding"}


class JsonErrors(BaseContentNegotiation):
    """Errors raised before the SDK answers (401, 403, 429) are `{"err"}` JSON whatever the
    client accepts: MCP clients send `Accept: application/json, text/event-stream`."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return (renderers[0], renderers[0].media_type)


@extend_schema(exclude=True)
class McpView(APIView):
    """Authentication and rate limits are the API's defaults. Users named in the body are
    checked by each tool (the JSON-RPC body is the SDK's to read), not by NamesOnlyItsUser."""

    permission_classes = [HasApiKey]
    content_negotiation_class = JsonErrors

    # POST only. The transport is stateless: there is no session for a DELETE to end, and a
    # GET stream could never carry anything yet would hold a gunicorn thread for as long as
    # the client keeps it open. The spec's answer for both is 405.
    def post(self, request: Request) -> HttpResponse:
        return forward(request)


def forward(request: Request) -> HttpResponse:
    """Hands the request to the SDK with the caller's scope and returns what it answers."""
    # Imported here: a server whose clients never use MCP never loads the SDK (about a second
    # of start-up and tens of MB per gunicorn worker).
    from mcpserver.bridge import get_bridge
    from mcpserver.tools import CALLER

    body = request.body
    environ = {
        **request.META,
        "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)),
        CALLER: scope_of(request),
    }
    answer: dict = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info=None) -> None:
        answer["status"] = int(status.split(" ", 1)[0])
        answer["headers"] = [(k, v) for k, v in headers if k.lower() not in _NOT_COPIED]

    # JSON responses (json_response=True): the whole answer, then the SDK is done.
    content = b"".join(get_bridge()(environ, start_response))
    return HttpResponse(content, status=answer["status"], headers=answer["headers"])
