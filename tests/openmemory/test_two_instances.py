"""Two app servers on one PostgreSQL and Redis, started together on a fresh database."""

from __future__ import annotations

import itertools
import json
import os
import random
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from openmemory import OpenMemory
from openmemory.client import OpenMemoryError
from tests.live import (
    REDIS_URL,
    ROOT,
    Deployment,
    fresh_database,
    missing_service,
    redis_problem,
    stop_processes,
    wait_for,
)

pytestmark = pytest.mark.live

USERS = [f"user-{i}" for i in range(6)]
INTERVAL = 20  # OM_USER_SUMMARY_INTERVAL
FIRST_ROUND = 10  # unique memories per user before the interval round (< INTERVAL)
RATE_LIMIT = 30  # OM_RATE_LIMIT, per user-scoped key per minute
WRITERS = 8


def manage(url: str, code: str) -> subprocess.Popen:
    """Starts `code` in `manage.py shell` on the shared database, as an operator would."""
    return subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url},
        stdout=subprocess.PIPE,
        text=True,
    )


def last_line(shell: subprocess.Popen) -> str:
    out, _ = shell.communicate(timeout=60)
    assert shell.returncode == 0
    return out.splitlines()[-1] if out else ""


class Cluster:
    """Two instances, A and B, as two machines would run them: each with its own gunicorn
    and Celery worker; beat runs once, beside A."""

    def __init__(self, url: str) -> None:
        self.url = url
        shared = {
            "DATABASE_URL": url,
            "CELERY_BROKER_URL": REDIS_URL,
            "OM_REDIS_URL": REDIS_URL,  # rate-limit counters shared by every process
            "OM_CELERY_QUEUE": f"test-{uuid.uuid4().hex[:8]}",
            "OM_RATE_LIMIT": str(RATE_LIMIT),
            "OM_USER_SUMMARY_INTERVAL": str(INTERVAL),
        }
        self.queue = shared["OM_CELERY_QUEUE"]
        self.a, self.b = Deployment(**shared), Deployment(**shared)

    def start(self) -> None:
        # Every process runs `manage.py migrate` first, all at the same moment.
        for instance in (self.a, self.b):
            instance.launch_server(workers=2, migrate=True)
            instance.start_worker(migrate=True)
        self.a.start_beat(migrate=True)
        for instance in (self.a, self.b):
            instance.wait_until_serving(timeout=45)
        assert all(p.poll() is None for p in self.a.processes + self.b.processes)

    def admins(self) -> list[OpenMemory]:
        return [self.a.client, self.b.client]

    def as_user(self, key: str) -> list[OpenMemory]:
        return [OpenMemory(api_key=key, base_url=i.base_url) for i in (self.a, self.b)]

    def idle(self) -> bool:
        """No task waiting in the queue or being run, twice in a row (kombu keeps a message
        in its `unacked` hash until an acks_late task finishes, but moves it there only
        just after taking it off the queue)."""
        import redis

        broker = redis.Redis.from_url(REDIS_URL)

        def ours(entry: bytes) -> bool:
            # The hash is shared by every queue of this Redis database (an earlier test may
            # have left one there): [message, exchange, routing key].
            try:
                return json.loads(entry)[2] == self.queue
            except (ValueError, IndexError, TypeError):
                return False

        def empty() -> bool:
            waiting = sum(broker.llen(key) for key in broker.scan_iter(f"{self.queue}*"))
            return waiting == 0 and not any(map(ours, broker.hvals("unacked")))

        if not empty():
            return False
        time.sleep(0.3)
        return empty()

    def stop(self) -> None:
        stop_processes(self.a.processes + self.b.processes)


@pytest.fixture
def cluster(tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip(
            "several app servers share one database only on PostgreSQL (SQLite is one "
            "machine's file): this runs in the PostgreSQL pass (make test-postgres)"
        )
    problem = redis_problem()
    if problem:
        missing_service(problem)
    with fresh_database(tmp_path) as url:
        running = Cluster(url)
        try:
            running.start()
            yield running
        finally:
            running.stop()


def add_all(writes: list[tuple[OpenMemory, str, str]]) -> list[tuple[str, str, dict]]:
    """Sends (client, user, content) adds from WRITERS threads; every one must succeed."""

    def one(write: tuple[OpenMemory, str, str]) -> tuple[str, str, dict]:
        client, user, content = write
        return user, content, client.add(content, user_id=user)

    with ThreadPoolExecutor(max_workers=WRITERS) as pool:
        return list(pool.map(one, writes))


def summaries(client: OpenMemory) -> dict[str, int]:
    return {user: client.get_user_summary(user)["reflection_count"] for user in USERS}


def settled(cluster: Cluster, client: OpenMemory, expected: dict[str, int]) -> dict[str, int]:
    """Each user's reflection count once the queue has drained: `expected`, and still so a
    moment later (a duplicate regeneration enqueued late would show by then). Counts are
    read only when nothing is queued: a GET of a user with no summary yet builds one."""
    assert wait_for(lambda: cluster.idle() and summaries(client) == expected, 30), (
        summaries(client),
        expected,
    )
    time.sleep(1)
    assert wait_for(cluster.idle, 10)
    return summaries(client)


def test_two_instances_lose_duplicate_and_leak_nothing_and_share_limits(cluster):
    rng = random.Random(7)
    admins = cluster.admins()
    instances = itertools.cycle(admins)  # writes alternate between A and B
    holders = [*USERS, "limited"]
    creating_keys = manage(
        cluster.url,
        "import json; from access.services import api_key_create; "
        f"print(json.dumps({{u: api_key_create(user_id=u)[1] for u in {holders!r}}}))",
    )

    # Round 1: every user's memories, sent by 8 writers through both instances at once; the
    # same sentence for every user (each gets their own memory), and one sentence per user
    # sent twice at once, through A and through B (one memory, both told its id).
    writes = [
        (next(instances), user, f"{user} noted fact number {n}: {rng.random()}")
        for user in USERS
        for n in range(FIRST_ROUND)
    ]
    writes += [(next(instances), user, "User drinks green tea every morning.") for user in USERS]
    writes += [(client, user, f"{user} was born in Lisbon.") for user in USERS for client in admins]
    rng.shuffle(writes)
    acknowledged: dict[str, set[str]] = {user: set() for user in USERS}
    replies: dict[tuple[str, str], set[str]] = {}
    for user, content, reply in add_all(writes):
        acknowledged[user].add(reply["id"])
        replies.setdefault((user, content), set()).add(reply["id"])
    assert all(len(ids) == 1 for ids in replies.values())  # same text, same user: one id
    assert len(set().union(*acknowledged.values())) == len(USERS) * (FIRST_ROUND + 2)

    # Each user's first memory queued exactly one regeneration, whichever instance took it.
    one = dict.fromkeys(USERS, 1)
    assert settled(cluster, admins[1], one) == one

    # Round 2: INTERVAL more memories each, through both instances: exactly one more
    # regeneration per user, not one per instance or per worker.
    writes = [
        (next(instances), user, f"{user} did activity {n} on day {rng.random()}")
        for user in USERS
        for n in range(INTERVAL)
    ]
    rng.shuffle(writes)
    for user, _, reply in add_all(writes):
        acknowledged[user].add(reply["id"])
    two = dict.fromkeys(USERS, 2)
    assert settled(cluster, admins[0], two) == two

    # One more memory each, below the interval: every summary is stale and none queued. The
    # sweep (beat, every second from now on) must regenerate each exactly once; it runs
    # while the checks below go on.
    for user, _, reply in add_all([(admins[1], user, f"{user} moved house.") for user in USERS]):
        acknowledged[user].add(reply["id"])
    sweeping = manage(
        cluster.url,
        "from django_celery_beat.models import IntervalSchedule, PeriodicTask\n"
        "task = PeriodicTask.objects.get(task='users.tasks.refresh_stale_summaries')\n"
        "task.interval = IntervalSchedule.objects.get_or_create(every=1, period='seconds')[0]\n"
        "task.save()",
    )

    # Nothing lost, duplicated or leaked: each user's memories, read through A with the
    # admin key and through B with the user's own key, are exactly what was acknowledged.
    keys = json.loads(last_line(creating_keys))
    for user in USERS:
        own_a, own_b = cluster.as_user(keys[user])
        listed_a = [m["id"] for m in admins[0].get_user_memories(user, limit=1000)["items"]]
        listed_b = [m["id"] for m in own_b.get_user_memories(user, limit=1000)["items"]]
        assert len(listed_a) == len(set(listed_a)) == len(acknowledged[user])
        assert set(listed_a) == set(listed_b) == acknowledged[user]
        for client, filters in ((own_a, {}), (admins[1], {"user_id": user})):
            matches = client.query("green tea in the morning", k=50, filters=filters)["matches"]
            assert matches and {m["id"] for m in matches} <= acknowledged[user]
        other = USERS[(USERS.index(user) + 1) % len(USERS)]
        with pytest.raises(OpenMemoryError) as refused:
            own_a.get(next(iter(acknowledged[other])))
        assert refused.value.status in (403, 404)

    # Rate limit: RATE_LIMIT requests a minute per key, counted once across both instances
    # (in Redis), not once per instance or per gunicorn worker.
    if 60 - time.time() % 60 < 5:  # all requests must fall in one one-minute window
        time.sleep(60 - time.time() % 60 + 0.5)
    limited = cluster.as_user(keys["limited"])

    def attempt(n: int) -> int:
        try:
            limited[n % 2].all(limit=1)
        except OpenMemoryError as exc:
            return exc.status
        return 200

    with ThreadPoolExecutor(max_workers=WRITERS) as pool:
        statuses = list(pool.map(attempt, range(2 * RATE_LIMIT + 10)))
    assert statuses.count(200) == RATE_LIMIT
    assert statuses.count(429) == RATE_LIMIT + 10

    last_line(sweeping)
    three = dict.fromkeys(USERS, 3)
    assert settled(cluster, admins[1], three) == three
