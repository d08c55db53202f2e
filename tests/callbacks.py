"""Telling apart the after-commit callbacks a write leaves."""

from __future__ import annotations


def regenerations(callbacks: list) -> list:
    """Of an add's after-commit callbacks, those that enqueue a summary regeneration (on
    PostgreSQL an add also asks for the vector indexer)."""
    return [c for c in callbacks if "_enqueue_regeneration" in c.__qualname__]
