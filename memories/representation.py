"""Plain-dict shapes of a memory, as the API answers and exports write them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.clock import to_ms
from memories.models import Memory
from memories.selectors import Match

if TYPE_CHECKING:
    from memories.services import CreateResult


def memory_item(memory: Memory) -> dict:
    return {
        "id": str(memory.id),
        "content": memory.content,
        "tags": sorted(tag.name for tag in memory.tags.all()),
        "metadata": memory.metadata,
        "created_at": to_ms(memory.created_at),
        "updated_at": to_ms(memory.updated_at),
        "last_seen_at": to_ms(memory.last_seen_at),
        "salience": round(memory.salience, 6),
        "decay_lambda": memory.decay_lambda,
        "primary_sector": memory.primary_sector,
        "sectors": memory.sectors,
        "version": memory.version,
        "user_id": memory.user_id,
    }


# A query match shows these fields of the memory, plus its score.
MATCH_FIELDS = (
    "id",
    "content",
    "sectors",
    "primary_sector",
    "salience",
    "last_seen_at",
    "tags",
    "metadata",
    "user_id",
)


def match_item(match: Match) -> dict:
    item = memory_item(match.memory)
    return {"score": round(match.score, 6), **{field: item[field] for field in MATCH_FIELDS}}


def created_item(result: CreateResult) -> dict:
    """The answer to an add: upstream OpenMemory's `{id, primary_sector, sectors}`."""
    body = {
        "id": str(result.memory.id),
        "primary_sector": result.memory.primary_sector,
        "sectors": result.memory.sectors,
    }
    if result.deduplicated:
        body["deduplicated"] = True
    return body
