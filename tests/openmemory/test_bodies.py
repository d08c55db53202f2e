"""Request bodies on a live gunicorn: chunked bodies are read, and over-limit ones get a 413
the client can read."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request

import pytest

from memories.models import Memory
from openmemory import OpenMemory, OpenMemoryError
from tests.live import API_KEY, Deployment

pytestmark = pytest.mark.live


def send_chunked(
    deployment: Deployment, method: str, path: str, chunks: list[bytes]
) -> tuple[int, dict]:
    """Sends the body as Node's http.request does without a length: Transfer-Encoding:
    chunked, no Content-Length."""
    connection = http.client.HTTPConnection("127.0.0.1", deployment.port, timeout=30)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {API_KEY}"}
    try:
        connection.request(method, path, body=iter(chunks), headers=headers, encode_chunked=True)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def in_chunks(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


def test_chunked_bodies_are_read(deploy):
    deployment = deploy()
    body = json.dumps({"content": "Sent in chunks by a streaming client", "user_id": "u1"})

    status, added = send_chunked(deployment, "POST", "/memory/add", in_chunks(body.encode(), 7))
    patch = json.dumps({"tags": ["streamed"], "metadata": {"via": "chunks"}}).encode()
    patched_status, patched = send_chunked(
        deployment, "PATCH", f"/memory/{added['id']}", in_chunks(patch, 5)
    )

    assert (status, patched_status) == (200, 200), (added, patched)
    memory = Memory.objects.get(pk=added["id"])
    assert memory.content == "Sent in chunks by a streaming client" and memory.user_id == "u1"
    assert patched["tags"] == ["streamed"] and patched["metadata"] == {"via": "chunks"}


def test_a_chunked_body_over_the_limit_is_413_while_reading(deploy):
    deployment = deploy(OM_MAX_BODY_BYTES="4096")
    body = json.dumps({"content": "x" * 20_000, "user_id": "u1"}).encode()

    status, answer = send_chunked(deployment, "POST", "/memory/add", in_chunks(body, 1000))

    assert (status, answer) == (413, {"err": "body too large (limit 4096 bytes)"})
    assert not Memory.objects.exists()

    # urllib streams an iterable body chunked, all of it before reading the answer.
    request = urllib.request.Request(
        deployment.base_url + "/memory/add",
        data=(b"x" * 1000 for _ in range(3000)),
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=30)
    assert raised.value.code == 413
    assert json.load(raised.value) == {"err": "body too large (limit 4096 bytes)"}


def test_a_body_over_the_limit_gets_a_413_the_client_can_read(deploy):
    """urllib (and so our client) sends the whole body before reading the answer: a server
    that answers and closes without reading it resets the connection under the client."""
    deployment = deploy()  # the default limit: 1,000,000 bytes
    client = OpenMemory(api_key=API_KEY, base_url=deployment.base_url, timeout=30)

    with pytest.raises(OpenMemoryError) as raised:
        client.add("x" * 6_000_000, user_id="u1")

    assert (raised.value.status, raised.value.err) == (413, "body too large (limit 1000000 bytes)")
    assert not Memory.objects.exists()
    assert client.health()["ok"] is True
