"""The Prometheus metrics every app records into, defined once (exposed by observability/).

Counters and histograms only: under gunicorn each worker process writes its values to files
in PROMETHEUS_MULTIPROC_DIR (openmemory/gunicorn_conf.py sets it up) and /metrics adds them
up across workers. Values read from the database at scrape time (memories, users, queue
depth) are not defined here but computed by observability/collectors.py, so that they need
no per-process bookkeeping.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# Latency buckets for API calls: a query takes milliseconds, an LLM-backed summary seconds.
_REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_EMBED_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)

#: Labelled by the URL pattern ("/memory/{pk}"), never the raw path, so ids cannot explode
#: the number of series; "<unmatched>" covers 404s and static files.
HTTP_REQUEST_DURATION = Histogram(
    "om_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and URL pattern.",
    ["method", "route"],
    buckets=_REQUEST_BUCKETS,
)
HTTP_REQUESTS = Counter(
    "om_http_requests",
    "HTTP requests answered, by method, URL pattern and status code.",
    ["method", "route", "status"],
)

EMBEDDING_DURATION = Histogram(
    "om_embedding_duration_seconds",
    "Time of one call to the embedding provider (a batch of texts), by model.",
    ["model"],
    buckets=_EMBED_BUCKETS,
)
EMBEDDED_TEXTS = Counter(
    "om_embedded_texts", "Texts sent to the embedding provider, by model.", ["model"]
)
EMBEDDING_ERRORS = Counter(
    "om_embedding_errors", "Calls to the embedding provider that failed, by model.", ["model"]
)

SUMMARY_REGENERATIONS = Counter(
    "om_summary_regenerations",
    "User summaries rebuilt, by the summarizer that wrote the text.",
    ["provider"],
)
#: reason: "llm_fallback" (the LLM kept failing; the extractive text was used instead) or
#: "error" (the regeneration raised; the summary stays stale for the sweep).
SUMMARY_FAILURES = Counter(
    "om_summary_failures", "User summary regenerations that failed, by reason.", ["reason"]
)
