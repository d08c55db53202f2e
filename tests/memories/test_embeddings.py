"""Embedding providers: the synthetic default and any OpenAI-compatible endpoint."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from memories.embeddings import SyntheticEmbeddings, get_provider
from memories.models import Memory


def test_synthetic_is_deterministic_unit_length_and_related_texts_are_close():
    provider = SyntheticEmbeddings(384)
    a, b, c = provider.embed(
        ["User prefers dark mode", "user preferences: dark mode UI", "Went hiking in the Alps"]
    )

    assert np.allclose(a, SyntheticEmbeddings(384).embed(["User prefers dark mode"])[0])
    assert np.linalg.norm(a) == pytest.approx(1.0, abs=1e-5)
    assert float(a @ b) > float(a @ c) + 0.2


class FakeOpenAI(BaseHTTPRequestHandler):
    """Speaks the OpenAI embeddings protocol: a 16-dim bag of letters per input."""

    calls: list = []
    fail = False

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).calls.append((self.path, self.headers.get("Authorization"), body))
        if type(self).fail:
            self.send_response(500)
            self.end_headers()
            return
        data = []
        for index, text in enumerate(body["input"]):
            vec = [0.0] * 16
            for ch in text.lower():
                if ch.isalpha():
                    vec[ord(ch) % 16] += 1.0
            data.append({"object": "embedding", "index": index, "embedding": vec})
        payload = json.dumps({"object": "list", "data": data, "model": body["model"]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def openai_server(settings):
    FakeOpenAI.calls = []
    FakeOpenAI.fail = False
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.OM_EMBEDDINGS = "openai"
    settings.OM_OPENAI_BASE_URL = f"http://127.0.0.1:{server.server_port}/v1"
    settings.OM_OPENAI_MODEL = "tiny-embed"
    settings.OPENAI_API_KEY = "sk-test"
    get_provider.cache_clear()
    yield FakeOpenAI
    server.shutdown()
    get_provider.cache_clear()


def test_openai_provider_embeds_through_the_endpoint(openai_server, add, query):
    body = add("abc abc", user_id="u1")
    add("xyz xyz", user_id="u1")

    path, auth, request = openai_server.calls[0]
    assert (path, auth) == ("/v1/embeddings", "Bearer sk-test")
    assert request == {"model": "tiny-embed", "input": ["abc abc"]}
    memory = Memory.objects.get(pk=body["id"])
    assert memory.embedding_model == "openai:tiny-embed"
    assert memory.embedding.shape == (16,)
    assert query("cab", user_id="u1")[0]["id"] == body["id"]


def test_openai_failure_is_a_clear_502_and_stores_nothing(openai_server, api):
    openai_server.fail = True

    response = api.post("/memory/add", {"content": "hello", "user_id": "u1"}, format="json")

    assert response.status_code == 502
    assert response.json()["err"].startswith("embedding service unavailable")
    assert Memory.objects.count() == 0
