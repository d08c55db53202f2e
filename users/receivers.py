"""Keeps users' summaries in step with their memories: subscribes to memories' announcements
(memories/signals.py), connected by UsersConfig.ready."""

from __future__ import annotations

from memories import signals
from users import services


def _memories_created(*, counts: dict[str, int], **_) -> None:
    services.user_summary_note_added(counts=counts)


def _memory_changed(*, user_id: str, **_) -> None:
    services.user_summary_invalidate(user_id=user_id)


def _user_memories_deleted(*, user_id: str, **_) -> None:
    services.user_summary_forget(user_id=user_id)


def connect() -> None:
    # dispatch_uid: connecting twice (a reloaded app registry) must not count twice.
    signals.memories_created.connect(_memories_created, dispatch_uid="users.memories_created")
    signals.memory_changed.connect(_memory_changed, dispatch_uid="users.memory_changed")
    signals.memory_deleted.connect(_memory_changed, dispatch_uid="users.memory_deleted")
    signals.user_memories_deleted.connect(
        _user_memories_deleted, dispatch_uid="users.user_memories_deleted"
    )
