"""Salience decay per sector over time (controlled clock) and reinforcement."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from django.db import connection

from core import clock
from memories.models import Memory
from memories.services import MemoryInput, memories_decay, memory_create_batch
from tests.locks import memory_held


def salience(memory_id: str) -> float:
    return Memory.objects.get(pk=memory_id).salience


def test_decay_follows_each_sectors_rate(add):
    semantic = add("Paris is the capital of France")["id"]
    emotional = add("I feel so happy and excited")["id"]
    later = clock.now() + timedelta(days=10)

    assert memories_decay(now=later) == 2

    assert salience(semantic) == pytest.approx(0.5 * math.exp(-0.005 * 10), rel=1e-3)
    assert salience(emotional) == pytest.approx(0.5 * math.exp(-0.02 * 10), rel=1e-3)


def test_decay_is_idempotent_in_time(add):
    memory = add("Paris is the capital of France")["id"]
    later = clock.now() + timedelta(days=30)

    memories_decay(now=later)
    once = salience(memory)
    memories_decay(now=later)

    assert salience(memory) == once
    memories_decay(now=later + timedelta(days=30))
    assert salience(memory) == pytest.approx(0.5 * math.exp(-0.005 * 60), rel=1e-3)


def test_decay_stops_at_the_floor(add, settings):
    settings.OM_SALIENCE_FLOOR = 0.2
    memory = add("I feel furious")["id"]

    memories_decay(now=clock.now() + timedelta(days=3650))

    assert salience(memory) == 0.2


def test_reinforce_boosts_the_decayed_value(add, api, monkeypatch):
    memory = add("Paris is the capital of France")["id"]
    later = clock.now() + timedelta(days=100)
    monkeypatch.setattr(clock, "now", lambda: later)

    body = api.post("/memory/reinforce", {"id": memory, "boost": 0.1}, format="json").json()

    assert body["salience"] == pytest.approx(0.5 * math.exp(-0.5) + 0.1, rel=1e-3)
    assert api.get(f"/memory/{memory}").json()["last_seen_at"] == int(later.timestamp() * 1000)


@pytest.fixture
def just_before_the_decay_writes(db):
    """with just_before_the_decay_writes(action): `action()` runs once, right before the
    first write of memories reaches the database, after everything the decay pass read, as
    a request served meanwhile by another process would."""

    def arm(action):
        fired: list[str] = []

        def wrapper(execute, sql, params, many, context):
            if not fired and sql.lstrip().upper().startswith("UPDATE") and "memor" in sql:
                fired.append(sql)
                action()
            return execute(sql, params, many, context)

        return connection.execute_wrapper(wrapper)

    return arm


def test_a_reinforcement_during_the_decay_pass_is_kept(
    add, api, monkeypatch, just_before_the_decay_writes
):
    memory = add("Paris is the capital of France")["id"]
    tomorrow = clock.now() + timedelta(days=1)
    monkeypatch.setattr(clock, "now", lambda: tomorrow)

    def reinforce() -> None:
        api.post("/memory/reinforce", {"id": memory, "boost": 0.4}, format="json")

    with just_before_the_decay_writes(reinforce):
        memories_decay(now=tomorrow)

    # decayed for a day (0.4975), plus the boost; not the decay pass's 0.4975 alone
    assert salience(memory) == pytest.approx(0.5 * math.exp(-0.005) + 0.4, rel=1e-4)


def test_a_retrieval_boost_during_the_decay_pass_is_kept(
    add, query, settings, monkeypatch, just_before_the_decay_writes
):
    settings.OM_RETRIEVAL_BOOST = 0.2
    memory = add("Paris is the capital of France", user_id="u1")["id"]
    tomorrow = clock.now() + timedelta(days=1)
    monkeypatch.setattr(clock, "now", lambda: tomorrow)

    with just_before_the_decay_writes(lambda: query("capital of France", user_id="u1")):
        memories_decay(now=tomorrow)

    assert salience(memory) == pytest.approx(0.5 * math.exp(-0.005) + 0.2, rel=1e-4)


@pytest.mark.django_db(transaction=True)
def test_the_decay_pass_skips_rows_a_request_holds_and_decays_them_next_time(add):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has one writer at a time, so no row locks")
    held, free = add("Paris is the capital of France")["id"], add("Rome is in Italy")["id"]
    tomorrow = clock.now() + timedelta(days=1)
    with memory_held(held):
        assert memories_decay(now=tomorrow) == 1  # did not wait for the held row

    assert salience(held) == 0.5 and salience(free) < 0.5
    assert memories_decay(now=tomorrow) == 1
    assert salience(held) == pytest.approx(0.5 * math.exp(-0.005), rel=1e-4)


def _memory_updates() -> tuple[int, int]:
    """PostgreSQL's count of memory rows updated so far, and of those updated in place."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")  # this backend's pending counts
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables "
            "WHERE relname = 'memories_memory'"
        )
        return cursor.fetchone()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="HOT updates are PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_decay_updates_rows_in_place_leaving_the_indexes_alone():
    # A row updated in place on its page (a HOT update) adds no index entry; one moved to
    # another page is inserted into every index again, the HNSW graph included, which cost
    # 15 times the update itself and grew the index at each hourly pass. The room for that
    # is the table's fillfactor (migration 0010); an old version is cleared from its page
    # once its pass's transaction has committed, so each chunk finds the room again.
    memory_create_batch(
        items=[MemoryInput(content=f"note {i} about sailing", user_id="u1") for i in range(300)]
    )
    updated, in_place = _memory_updates()

    assert memories_decay(now=clock.now() + timedelta(days=3), chunk=1) == 300

    assert _memory_updates() == (updated + 300, in_place + 300)
