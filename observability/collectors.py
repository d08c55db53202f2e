"""Gauges read at scrape time: memories and users (database counts), Celery queue depth."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator

from django.conf import settings
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from memories.selectors import memories_count, users_with_memories_count

logger = logging.getLogger("openmemory")


class DatabaseCollector(Collector):
    """Counts asked of the database on each scrape, not kept per process: every worker would
    report the same number, and summing them would be wrong. Only counts an index answers
    (bench/metrics.py): the memories awaiting re-embedding, which need a scan of the table,
    stay on /health."""

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Without it, registering would run collect() (and query the database) at start.
        for name in ("om_memories", "om_users"):
            yield GaugeMetricFamily(name, "")

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily("om_memories", "Stored memories.", value=memories_count())
        yield GaugeMetricFamily(
            "om_users", "Users with at least one memory.", value=users_with_memories_count()
        )


@functools.cache
def _redis(url: str):
    import redis

    # A scrape must not hang on a dead broker.
    return redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)


class CeleryQueueCollector(Collector):
    """Tasks waiting in the Redis broker's queue (kombu keeps a queue as a Redis list named
    after it). Nothing is reported without a broker: tasks then run in-process."""

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily("om_celery_broker_up", "")
        yield GaugeMetricFamily("om_celery_queue_length", "", labels=["queue"])

    def collect(self) -> Iterator[GaugeMetricFamily]:
        url = settings.CELERY_BROKER_URL
        if settings.CELERY_TASK_ALWAYS_EAGER or not url.startswith(("redis://", "rediss://")):
            return
        queue = settings.CELERY_TASK_DEFAULT_QUEUE
        up = GaugeMetricFamily(
            "om_celery_broker_up", "Whether the Celery broker answered this scrape."
        )
        try:
            length = _redis(url).llen(queue)
        except Exception as exc:  # redis raises several types for an unreachable server
            logger.warning("metrics: Celery broker unreachable (%s)", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        depth = GaugeMetricFamily(
            "om_celery_queue_length", "Tasks waiting in the Celery queue.", labels=["queue"]
        )
        depth.add_metric([queue], length)
        yield depth


SCRAPE_TIME_COLLECTORS = (DatabaseCollector, CeleryQueueCollector)


def add_to(registry: CollectorRegistry) -> CollectorRegistry:
    for collector in SCRAPE_TIME_COLLECTORS:
        registry.register(collector())
    return registry


@functools.cache
def register_default() -> None:
    """Once per process: the default registry (used without PROMETHEUS_MULTIPROC_DIR) gets
    the scrape-time collectors beside the process's own counters."""
    add_to(REGISTRY)
