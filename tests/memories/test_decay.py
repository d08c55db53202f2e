"""Salience decay per sector over time (controlled clock) and reinforcement."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from memories.models import Memory
from memories.services import memories_decay
from openmemory import clock


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
