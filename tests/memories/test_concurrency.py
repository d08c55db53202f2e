"""8 client processes x 500 adds through gunicorn: every memory stored exactly once."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from django.db.models import Count

from memories.models import Memory
from tests.live import API_KEY, ROOT, wait_for
from users.models import UserSummary

CLIENTS, ADDS, USERS, SHARED = 8, 500, 10, 50

# Each client adds 450 texts of its own and the same 50 texts as every other client: those
# 50 must be stored once each, with the other 7 adds answered as duplicates.
CLIENT = """
import json, sys
from openmemory import OpenMemory
om = OpenMemory(api_key=sys.argv[2], base_url=sys.argv[1])
client, adds, users, shared = map(int, sys.argv[3:7])
ids = {}
for i in range(adds):
    n = i if i < shared else client * adds + i
    user = f"user{n % users}"
    content = f"Fact number {n} about {user}"
    answer = om.add(content, user_id=user, tags=[f"t{n % 3}"])
    ids[content] = [answer["id"], bool(answer.get("deduplicated"))]
print(json.dumps(ids))
"""


def run_clients(deployment, script: str, clients: int, *args: int) -> list[dict]:
    """Runs `clients` processes of `script` at once against the deployment (argv: base url,
    key, client number, *args); returns what each printed, as JSON, once all exited 0."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, deployment.base_url, API_KEY]
            + [str(v) for v in (client, *args)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for client in range(clients)
    ]
    results = []
    for process in processes:
        out, _ = process.communicate(timeout=600)
        assert process.returncode == 0
        results.append(json.loads(out))
    return results


def test_concurrent_adds_store_each_memory_exactly_once(deploy):
    deployment = deploy()
    results = run_clients(deployment, CLIENT, CLIENTS, ADDS, USERS, SHARED)

    expected = SHARED + CLIENTS * (ADDS - SHARED)
    assert Memory.objects.count() == expected
    # Every client got the same id for each shared text; exactly one of them created it.
    for i in range(SHARED):
        content = f"Fact number {i} about user{i % USERS}"
        answers = [result[content] for result in results]
        assert len({memory_id for memory_id, _ in answers}) == 1
        assert sum(not deduplicated for _, deduplicated in answers) == 1
    per_user = dict(Memory.objects.values_list("user_id").annotate(n=Count("id")))
    assert per_user == {f"user{u}": expected // USERS for u in range(USERS)}
    assert Memory.tags.through.objects.count() == expected

    # Summary bookkeeping: every add was counted; a final regeneration accounts for all.
    for summary in UserSummary.objects.all():
        assert summary.reflection_count >= 2
        assert summary.memory_count + summary.pending_memories >= per_user[summary.user_id]
    # Without a broker the server's scheduler thread does the work after the answer.
    deployment.client._request("POST", "/users/summaries/regenerate-all")

    def all_summarised() -> bool:
        summaries = UserSummary.objects.all()
        return all(
            (summary.memory_count, summary.pending_memories) == (per_user[summary.user_id], 0)
            for summary in summaries
        )

    assert wait_for(all_summarised, timeout=60)


# Each client sends batches for one user drawn from the same few hundred contents: at every
# moment several requests carry some of the same contents and some of their own, so adds
# keep losing races to store a content, also right after retrying one. Batches larger than
# COPY_FROM_ROWS: on PostgreSQL their rows go in through COPY, whose refusal of a duplicate
# must reach the add as the IntegrityError it retries on.
BATCH_CLIENTS, BATCHES, BATCH_ITEMS, POOL = 4, 12, 120, 600
BATCH_CLIENT = """
import json, random, sys, urllib.request
base, key, client, batches, size, pool, users = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:8])
rng = random.Random(client)
ids = {}
for b in range(batches):
    numbers = rng.sample(range(pool), size)
    contents = [f"Imported fact {n} about the giant" for n in numbers]
    body = {"items": [
        {"content": c, "user_id": f"giant{n % users}", "tags": ["import"]}
        for n, c in zip(numbers, contents)
    ]}
    request = urllib.request.Request(
        base + "/memory/add/batch", json.dumps(body).encode(), method="POST",
        headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        assert response.status == 201, response.status
        for content, item in zip(contents, json.load(response)["items"], strict=True):
            ids.setdefault(content, item["id"])
            assert ids[content] == item["id"], content
print(json.dumps(ids))
"""


@pytest.mark.parametrize("users", [1, 3], ids=["one-user", "three-users"])
def test_concurrent_overlapping_batches_all_succeed(deploy, users):
    """With three users every batch takes places and counts summaries for all three at once,
    in one statement each (memories/revisions.py, users/services.py): concurrent batches must
    still wait for each other rather than deadlock."""
    # Each client exits non-zero unless every batch was answered 201.
    results = run_clients(deploy(), BATCH_CLIENT, BATCH_CLIENTS, BATCHES, BATCH_ITEMS, POOL, users)

    # Every content sent is stored once, and every client was given that one memory.
    sent: dict[str, str] = {}
    for result in results:
        for content, memory_id in result.items():
            assert sent.setdefault(content, memory_id) == memory_id
    stored = dict(Memory.objects.filter(user_id__startswith="giant").values_list("content", "pk"))
    assert {content: str(pk) for content, pk in stored.items()} == sent
    for user in range(users):
        positions = Memory.objects.for_user(f"giant{user}").values_list("position", flat=True)
        assert len(set(positions)) == len(positions)  # every memory its own place
