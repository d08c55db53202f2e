"""Fixtures for the operators' pages: staff clients and a memory factory."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from memories.services import MemoryInput, memory_create_batch

TOPICS = [
    ("prefers dark mode in every editor", ["preferences", "ui"]),
    ("completed the Python course last week", ["learning"]),
    ("feels anxious before public talks", ["feelings"]),
    ("how to deploy: run make deploy then check the logs", ["howto", "work"]),
    ("lives in Lisbon and walks to work", ["facts"]),
]


def memory_inputs(count: int, *, start: int = 0, users: int = 5) -> list[MemoryInput]:
    """`count` distinct memories spread over `users` users and every tag."""
    items = []
    for i in range(start, start + count):
        text, tags = TOPICS[i % len(TOPICS)]
        items.append(
            MemoryInput(
                content=f"User {text} (note {i})",
                user_id=f"user_{i % users}",
                tags=[*tags, f"batch{i % 3}"],
            )
        )
    return items


@pytest.fixture
def make_memories(db):
    """make_memories(count, start=0) stores memories through the service; returns them."""

    def _make(count: int, *, start: int = 0, users: int = 5) -> list:
        results = memory_create_batch(items=memory_inputs(count, start=start, users=users))
        return [result.memory for result in results]

    return _make


@pytest.fixture
def staff(db, django_user_model):
    return django_user_model.objects.create_user(
        username="operator", password="operator-pass-123", is_staff=True, is_superuser=True
    )


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


@pytest.fixture
def staff_with(client, django_user_model):
    """staff_with("app.codename", ...) -> the test client logged in as a staff account that is
    not a superuser and holds just those permissions."""

    def _login(*perms: str):
        user = django_user_model.objects.create_user(
            username="limited", password="limited-pass-123", is_staff=True
        )
        for perm in perms:
            app_label, codename = perm.split(".")
            user.user_permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
        client.force_login(user)
        return client

    return _login
