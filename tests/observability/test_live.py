"""A live gunicorn (3 workers): counts summed across workers, queue depth, JSON logs."""

from __future__ import annotations

import json
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.db import connection

from tests.live import (
    API_KEY,
    REDIS_URL,
    Deployment,
    missing_service,
    redis_problem,
)
from tests.observability.conftest import Samples, parse, value

pytestmark = pytest.mark.live
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def call(
    deployment: Deployment, path: str, *, body: dict | None = None, headers: dict | None = None
):
    """(status, response headers, body bytes) of one request to the live server."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        deployment.base_url + path,
        data=data,
        headers={**AUTH, "Content-Type": "application/json", **(headers or {})},
        method="POST" if data is not None else "GET",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, response.headers, response.read()


def scrape(deployment: Deployment) -> Samples:
    status, _, body = call(deployment, "/metrics")
    assert status == 200
    return parse(body.decode())


def test_counts_from_every_worker_add_up(deploy, tmp_path):
    metrics_dir = tmp_path / "prometheus"
    deployment = deploy(PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    requests = 0

    def writers() -> set[str]:
        return {path.stem.rsplit("_", 1)[1] for path in metrics_dir.glob("counter_*.db")}

    # Concurrent clients, in rounds until a second worker has taken some: requests are fast
    # enough now that one worker's 4 threads may take a whole round of them.
    with ThreadPoolExecutor(8) as pool:
        while len(writers()) < 2 and requests < 2000:
            statuses = list(pool.map(lambda _: call(deployment, "/memory/all")[0], range(120)))
            assert statuses == [200] * 120
            requests += 120
    assert len(writers()) >= 2, f"only worker(s) {writers()} answered {requests} requests"
    # Whichever worker answers the scrape reports every worker's requests.
    labels = {"method": "GET", "route": "/memory/all", "status": "200"}
    seen = [value(scrape(deployment), "om_http_requests_total", **labels) for _ in range(6)]
    assert seen == [requests] * 6
    durations = scrape(deployment)
    count = value(
        durations, "om_http_request_duration_seconds_count", method="GET", route="/memory/all"
    )
    assert count == requests


def test_queue_depth_of_the_celery_broker(deploy):
    problem = redis_problem()
    if problem:
        missing_service(problem)
    import redis

    deployment = deploy(CELERY_BROKER_URL=REDIS_URL)  # and no worker: tasks wait in Redis
    queue = deployment.env["OM_CELERY_QUEUE"]
    try:
        for user in ("erin", "frank"):  # a first memory enqueues the user's summary
            call(
                deployment, "/memory/add", body={"content": f"{user} likes kites", "user_id": user}
            )

        samples = scrape(deployment)

        assert value(samples, "om_celery_broker_up") == 1
        # Each add's summary regeneration; on PostgreSQL each add's vector indexer run too.
        expected = 2 if connection.vendor == "sqlite" else 4
        assert value(samples, "om_celery_queue_length", queue=queue) == expected
    finally:
        redis.Redis.from_url(REDIS_URL).delete(queue)


class LoggedDeployment(Deployment):
    """A Deployment whose processes write their stderr to a file."""

    def __init__(self, log: Path, **env: str) -> None:
        super().__init__(**env)
        self.log = log.open("wb")
        self.stderr = self.log

    def stop(self) -> None:
        super().stop()
        self.log.close()


def test_json_logs_carry_the_request_id(transactional_db, tmp_path, closed_port):
    log = tmp_path / "server.log"
    # An unreachable LLM: the summary of a first memory, built during the add (no scheduler
    # thread to hand it to), logs a warning.
    deployment = LoggedDeployment(
        log,
        OM_LOG_FORMAT="json",
        OM_EMBEDDED_SCHEDULER="false",
        OM_SUMMARIZER="llm",
        OM_LLM_BASE_URL=f"http://127.0.0.1:{closed_port}/v1",
        OM_LLM_ATTEMPTS="1",
    )
    try:
        deployment.start_server()
        _, sent, _ = call(
            deployment,
            "/memory/add",
            body={"content": "Gina sails", "user_id": "gina"},
            headers={"X-Request-ID": "trace-4711"},
        )
        _, generated, _ = call(deployment, "/memory/all")
        _, replaced, _ = call(deployment, "/memory/all", headers={"X-Request-ID": "x" * 300})
    finally:
        deployment.stop()

    text = log.read_text()
    print(text)
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert lines, "the server logged nothing"
    assert all({"time", "level", "logger", "message", "request_id"} <= set(e) for e in lines)
    assert sent["X-Request-ID"] == "trace-4711"
    traced = [e for e in lines if e["request_id"] == "trace-4711"]
    warning = next(e for e in traced if e["level"] == "WARNING")
    assert warning["logger"] == "openmemory"
    assert "llm: unreachable" in warning["message"]
    request_line = next(e for e in traced if e["logger"] == "openmemory.request")
    assert (request_line["method"], request_line["path"]) == ("POST", "/memory/add")
    assert request_line["status"] == 200
    assert request_line["duration_ms"] > 0
    for headers in (generated, replaced):
        rid = headers["X-Request-ID"]
        assert len(rid) == 32 and rid != "x" * 300
        assert [e["path"] for e in lines if e["request_id"] == rid] == ["/memory/all"]
    # gunicorn's own lines (start, workers) are JSON too, outside any request.
    assert any(e["logger"].startswith("gunicorn") for e in lines)
