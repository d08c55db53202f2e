"""8 client processes x 500 adds through gunicorn: every memory stored exactly once."""

from __future__ import annotations

import json
import subprocess
import sys

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


def test_concurrent_adds_store_each_memory_exactly_once(deploy):
    deployment = deploy()
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", CLIENT, deployment.base_url, API_KEY]
            + [str(v) for v in (client, ADDS, USERS, SHARED)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for client in range(CLIENTS)
    ]
    results = []
    for process in processes:
        out, _ = process.communicate(timeout=600)
        assert process.returncode == 0
        results.append(json.loads(out))

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
