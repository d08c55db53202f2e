"""Property: any interleaving of adds, updates, deletes and queries by several users holding
user-scoped keys never shows one user anything of another's."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from rest_framework.test import APIClient

from access.services import api_key_create
from memories.models import Memory

USERS = ["ana", "ben", "cai"]
WORDS = st.sampled_from(["tea", "jazz", "chess", "Porto", "cats", "running", "python"])
TEXT = st.lists(WORDS, min_size=1, max_size=4).map(" ".join)


def run_machine(clients: dict[str, APIClient]) -> None:
    class Isolation(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            # Each example starts empty, so that the same choices replay the same steps.
            Memory.objects.all().delete()
            self.owned: dict[str, set[str]] = {user: set() for user in USERS}
            self.created: list[str] = []  # in creation order: stable for hypothesis to pick

        def owner_of(self, memory_id: str) -> str:
            return next(user for user, ids in self.owned.items() if memory_id in ids)

        def any_id(self, data) -> str | None:
            alive = [i for i in self.created if any(i in ids for ids in self.owned.values())]
            return data.draw(st.sampled_from(alive)) if alive else None

        @rule(user=st.sampled_from(USERS), text=TEXT)
        def add(self, user, text):
            answer = clients[user].post("/memory/add", {"content": text}, format="json").json()
            assert answer["id"] not in set().union(*(self.owned[u] for u in USERS if u != user))
            self.owned[user].add(answer["id"])
            if answer["id"] not in self.created:
                self.created.append(answer["id"])

        @rule(user=st.sampled_from(USERS), text=TEXT, data=st.data())
        def update(self, user, text, data):
            memory_id = self.any_id(data)
            if memory_id is None:
                return
            response = clients[user].patch(f"/memory/{memory_id}", {"content": text}, format="json")
            if self.owner_of(memory_id) == user:
                assert response.status_code in (200, 409)
            else:
                assert response.status_code == 404

        @rule(user=st.sampled_from(USERS), data=st.data())
        def delete(self, user, data):
            memory_id = self.any_id(data)
            if memory_id is None:
                return
            response = clients[user].delete(f"/memory/{memory_id}")
            if self.owner_of(memory_id) == user:
                assert response.status_code == 200
                self.owned[user].discard(memory_id)
            else:
                assert response.status_code == 404

        @rule(user=st.sampled_from(USERS), text=TEXT, other=st.sampled_from(USERS))
        def query(self, user, text, other):
            client = clients[user]
            matches = client.post("/memory/query", {"query": text, "k": 50}, format="json")
            assert {m["id"] for m in matches.json()["matches"]} <= self.owned[user]
            asked = client.post(
                "/memory/query", {"query": text, "filters": {"user_id": other}}, format="json"
            )
            assert asked.status_code == (200 if other == user else 403)

        @invariant()
        def each_user_sees_exactly_their_own(self):
            for user, client in clients.items():
                items = client.get("/memory/all?l=1000").json()["items"]
                assert {item["id"] for item in items} == self.owned[user]
                assert {item["user_id"] for item in items} <= {user}

    Isolation.TestCase.settings = settings(
        max_examples=25,
        stateful_step_count=15,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    Isolation.TestCase().runTest()


@pytest.mark.django_db
def test_scoped_keys_never_see_another_users_memories(settings):
    settings.OM_API_KEYS = ["admin"]
    clients = {}
    for user in USERS:
        _, raw = api_key_create(user_id=user)
        clients[user] = APIClient()
        clients[user].credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")

    run_machine(clients)
