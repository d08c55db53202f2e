"""The per-process search cache (memories/search_cache.py): answers follow every write at
once, in this process and across gunicorn workers, and never cross users."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from memories import search_cache
from memories.models import Memory
from memories.services import memory_create, memory_delete, memory_update
from tests.live import wait_for


def ids(matches: list[dict]) -> list[str]:
    return [m["id"] for m in matches]


def vector_reads(captured: CaptureQueriesContext) -> list[str]:
    return [
        q["sql"]
        for q in captured.captured_queries
        if ('"memories_memory"."embedding"' in q["sql"] and "julianday" in q["sql"].lower())
        or "vector_send" in q["sql"]
    ]


def scans(captured: CaptureQueriesContext) -> int:
    """Reads of a user's whole scope (the cache's load): they select every vector."""
    return sum('"position" >' not in sql for sql in vector_reads(captured))


def extensions(captured: CaptureQueriesContext) -> int:
    """Reads of only the memories placed after those a copy holds."""
    return sum('"position" >' in sql for sql in vector_reads(captured))


@pytest.fixture
def alice(add):
    added = [
        add(text, user_id="alice")["id"]
        for text in (
            "Alice adopted a grey cat called Miso",
            "Alice runs along the river every Sunday",
            "Alice is learning Portuguese for a trip to Lisbon",
        )
    ]
    return added


def test_repeated_queries_read_the_scope_once(alice, query):
    search_cache.clear()
    with CaptureQueriesContext(connection) as first:
        query("cat", user_id="alice")
    with CaptureQueriesContext(connection) as second:
        query("river", user_id="alice")
    assert scans(first) == 1
    assert scans(second) == 0


def test_a_batch_over_several_users_extends_each_copy_with_its_own_memories(alice, api, query):
    """The batch takes places for all its users at once (memories/revisions.py): each
    user's new memories come after that user's earlier ones, in batch order."""
    query("cat", user_id="alice")
    items = [
        {"content": "Alice bought a kayak", "user_id": "alice"},
        {"content": "Bo bought a kayak", "user_id": "bo"},
        {"content": "Alice paddled to the island", "user_id": "alice"},
        {"content": "Cy sold a kayak", "user_id": "cy"},
    ]
    added = api.post("/memory/add/batch", {"items": items}, format="json").json()["ids"]

    with CaptureQueriesContext(connection) as captured:
        found = ids(query("kayak island", user_id="alice", k=10))

    assert (scans(captured), extensions(captured)) == (0, 1)
    assert set(found) == set(alice) | {added[0], added[2]}
    positions = dict(Memory.objects.for_user("alice").values_list("pk", "position"))
    assert sorted(positions.values()) == [1, 2, 3, 4, 5]
    assert positions[uuid.UUID(added[2])] == 5
    assert ids(query("kayak", user_id="bo")) == [added[1]]
    assert ids(query("kayak", user_id="cy")) == [added[3]]


@pytest.mark.django_db
def test_edits_deletes_and_adds_show_at_once(alice, add, api, query):
    assert ids(query("cat Miso", user_id="alice"))[0] == alice[0]
    api.patch(f"/memory/{alice[0]}", {"content": "Alice adopted a dog named Pesto"}, format="json")
    found = query("dog Pesto", user_id="alice")
    assert found[0]["id"] == alice[0] and "Pesto" in found[0]["content"]
    api.delete(f"/memory/{alice[1]}")
    assert alice[1] not in ids(query("river Sunday", user_id="alice", k=10))
    new = add("Alice bakes sourdough on Fridays", user_id="alice")["id"]
    assert ids(query("sourdough", user_id="alice"))[0] == new


@pytest.mark.django_db
def test_writes_outside_the_services_are_noticed(alice, query):
    """A script deleting or inserting rows directly changes no revision token; the row count
    and highest place checked with it still give the change away."""
    query("cat", user_id="alice")
    Memory.objects.filter(pk=alice[0]).delete()
    assert alice[0] not in ids(query("cat Miso", user_id="alice", k=10))


def test_after_an_add_a_copy_reads_only_the_new_memory(alice, add, query):
    query("cat", user_id="alice")
    new = add("Alice bakes sourdough bread on Fridays", user_id="alice")["id"]

    with CaptureQueriesContext(connection) as captured:
        found = query("sourdough bread", user_id="alice", k=10)

    assert (scans(captured), extensions(captured)) == (0, 1)
    assert ids(found)[0] == new
    search_cache.clear()  # the same answer as from a copy read whole
    assert query("sourdough bread", user_id="alice", k=10) == found


def test_many_adds_in_a_row_extend_the_same_copy(alice, add, query):
    query("cat", user_id="alice")
    added = []
    for n in range(40):
        added.append(add(f"Alice note {n}: tried recipe number {n}", user_id="alice")["id"])
        with CaptureQueriesContext(connection) as captured:
            assert ids(query(f"recipe number {n}", user_id="alice", k=1)) == [added[-1]]
        assert scans(captured) == 0

    everything = query("Alice", user_id="alice", k=100)
    search_cache.clear()
    assert query("Alice", user_id="alice", k=100) == everything
    assert set(added) | set(alice) == set(ids(everything))


def test_an_add_that_repeats_a_memory_makes_the_copy_read_again(alice, add, query):
    # The repeat refreshes the stored memory's last_seen_at, which ranking uses.
    query("cat", user_id="alice")
    add("Alice runs along the river every Sunday", user_id="alice")

    with CaptureQueriesContext(connection) as captured:
        query("river", user_id="alice")

    assert (scans(captured), extensions(captured)) == (1, 0)


def test_a_copy_is_not_extended_past_rows_removed_around_the_services(alice, add, query):
    # The new memory alone does not explain the count: the copy is read whole again.
    query("cat", user_id="alice")
    Memory.objects.filter(pk=alice[0]).delete()
    new = add("Alice bakes sourdough bread on Fridays", user_id="alice")["id"]

    with CaptureQueriesContext(connection) as captured:
        found = ids(query("cat Miso sourdough", user_id="alice", k=10))

    assert scans(captured) == 1
    assert new in found and alice[0] not in found


def test_a_user_outgrowing_the_budget_is_read_whole_not_extended_from_an_old_copy(
    api, query, settings
):
    settings.OM_SEARCH_CACHE_MB = 1  # about 600 memories with 384-d vectors

    def add_notes(numbers: range) -> None:
        items = [
            {"content": f"Dana note {n}: walked route {n}", "user_id": "dana"} for n in numbers
        ]
        assert api.post("/memory/add/batch", {"items": items}, format="json").status_code == 201

    add_notes(range(400))
    query("walked route", user_id="dana")
    with CaptureQueriesContext(connection) as kept:
        query("walked route", user_id="dana")
    assert scans(kept) + extensions(kept) == 0  # 400 fit: the copy is kept
    add_notes(range(400, 800))
    query("walked route", user_id="dana")  # 800 do not: that copy is not kept either

    with CaptureQueriesContext(connection) as captured:
        found = query("route 799", user_id="dana", k=1)

    assert (scans(captured), extensions(captured)) == (1, 0)
    assert "route 799" in found[0]["content"]


@pytest.mark.django_db
def test_users_never_share_a_copy(add, query):
    mine = add("Likes green tea in the morning", user_id="u1")["id"]
    theirs = add("Likes green tea in the morning", user_id="u2")["id"]
    assert mine != theirs
    for _ in range(2):  # the second round is served from the copies
        assert ids(query("green tea", user_id="u1")) == [mine]
        assert ids(query("green tea", user_id="u2")) == [theirs]


def test_copies_follow_writes_from_other_processes(deploy):
    """Three gunicorn workers, each with its own copy: after a write through any worker (or
    by another process on the database), every worker answers from the new state."""
    deployment = deploy()
    om = deployment.client
    cat = om.add("Bea has a ginger cat called Toast", user_id="bea")["id"]
    om.add("Bea swims at the lido on Tuesdays", user_id="bea")

    def answers(text: str) -> list[list[str]]:
        # Enough requests that each of the 3 workers answers some of them.
        return [
            [m["content"] for m in om.query(text, k=5, filters={"user_id": "bea"})["matches"]]
            for _ in range(12)
        ]

    assert all("Toast" in found[0] for found in answers("cat Toast"))
    om.update(cat, content="Bea has a black cat called Biscuit")
    assert all("Biscuit" in found[0] for found in answers("cat"))
    assert not any("Toast" in text for found in answers("cat") for text in found)

    # Another process (here: this test, through the services) writes to the database.
    memory_update(memory_id=cat, content="Bea has a tabby cat called Crumble")
    assert all("Crumble" in found[0] for found in answers("cat"))
    memory_delete(memory_id=cat)
    assert not any("cat" in text for found in answers("cat") for text in found)
    memory_create(content="Bea keeps bees on the roof", user_id="bea")
    assert wait_for(lambda: all("bees" in found[0] for found in answers("bees roof")), 5)
