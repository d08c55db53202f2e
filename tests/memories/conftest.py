"""Fixtures shared by the memories tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest


@pytest.fixture
def vectors_pending(api) -> Callable[[], int]:
    """vectors_pending() -> how many memories await the vector index, as GET /health says."""
    return lambda: api.get("/health").json()["vectors_pending"]
