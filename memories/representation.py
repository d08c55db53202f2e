"""Plain-dict shapes of a memory, as the API answers and exports write them."""

from __future__ import annotations

from memories.models import Memory
from openmemory.clock import to_ms


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
