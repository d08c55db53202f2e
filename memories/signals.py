"""What happens to memories, announced to whoever keeps data derived from them (users'
summaries): memories never calls those apps, they subscribe here.

Every signal is sent inside the transaction that made the change, so a receiver's writes
commit or roll back with it."""

from __future__ import annotations

from django.dispatch import Signal

#: Memories were stored. `counts`: {user_id: how many new memories} (the shared pool, whose
#: user is None, is left out).
memories_created = Signal()
#: A user's memory was edited. `user_id`: its owner.
memory_changed = Signal()
#: A user's memory was deleted. `user_id`: its owner.
memory_deleted = Signal()
#: Every memory of one user was deleted. `user_id`, and `deleted`: how many.
user_memories_deleted = Signal()
