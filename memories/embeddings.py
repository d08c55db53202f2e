"""The embedding-provider interface and its providers, chosen by OM_EMBEDDINGS."""

from __future__ import annotations

import functools
import itertools
import json
import re
import urllib.error
import urllib.request
import zlib
from typing import Protocol

import numpy as np
from django.conf import settings

from openmemory.exceptions import ServiceError


class EmbeddingError(ServiceError):
    status_code = 502


class EmbeddingProvider(Protocol):
    #: Identifies the vectors this provider makes; stored with every row so that search
    #: never compares vectors from different models.
    model_id: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        ...


_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(
    (
        "a an and are as at be by did do does for from has have i in is it its of on or s so "
        "that the their them they this to was were what when where which who why will with "
        "you your user users about"
    ).split()
)


def _normalise(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (matrix / norms).astype(np.float32, copy=False)


class SyntheticEmbeddings:
    """Deterministic, dependency-free embeddings: signed feature hashing of words, word
    pairs and character n-grams, so texts that share words or word stems land close."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.model_id = f"synthetic-v1-{dim}"

    def _features(self, text: str) -> list[tuple[str, float]]:
        words = [w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS]
        feats: list[tuple[str, float]] = []
        for word in words:
            feats.append(("w:" + word, 1.0))
            padded = f"<{word}>"
            # Character 4-grams (3-grams for short words) match across inflections:
            # "prefers" / "preference", "course" / "courses".
            n = 4 if len(padded) > 5 else 3
            feats.extend(("c:" + padded[i : i + n], 0.5) for i in range(len(padded) - n + 1))
        feats.extend(("b:" + a + " " + b, 0.7) for a, b in itertools.pairwise(words))
        return feats

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            vec = out[row]
            for feat, weight in self._features(text):
                h = zlib.crc32(feat.encode())
                vec[h % self.dim] += weight if (h >> 31) & 1 else -weight
        return _normalise(out)


class OpenAIEmbeddings:
    """Any OpenAI-compatible `/embeddings` endpoint (OpenAI, vLLM, Ollama, LocalAI...)."""

    def __init__(self, base_url: str, model: str, api_key: str, timeout: float) -> None:
        self.base_url = base_url
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self.model_id = f"openai:{model}"
        self.dim = 0  # learned from the first response

    def embed(self, texts: list[str]) -> np.ndarray:
        body = json.dumps({"model": self.model, "input": texts}).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(
            f"{self.base_url}/embeddings", data=body, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = json.load(response)
            data = sorted(payload["data"], key=lambda item: item.get("index", 0))
            matrix = np.array([item["embedding"] for item in data], dtype=np.float32)
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise EmbeddingError(f"embedding service unavailable: {exc}") from None
        except (KeyError, TypeError, ValueError) as exc:
            raise EmbeddingError(f"embedding service sent an invalid response: {exc}") from None
        if matrix.ndim != 2 or matrix.shape[0] != len(texts):
            raise EmbeddingError("embedding service returned the wrong number of vectors")
        self.dim = matrix.shape[1]
        return _normalise(matrix)


@functools.cache
def get_provider() -> EmbeddingProvider:
    if settings.OM_EMBEDDINGS == "openai":
        return OpenAIEmbeddings(
            settings.OM_OPENAI_BASE_URL,
            settings.OM_OPENAI_MODEL,
            settings.OPENAI_API_KEY,
            settings.OM_OPENAI_TIMEOUT,
        )
    return SyntheticEmbeddings(settings.OM_VECTOR_DIM)


def embed_one(text: str) -> np.ndarray:
    return get_provider().embed([text])[0]
