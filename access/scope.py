"""Which users' memories a request may touch, as decided by the API key that made it."""

from __future__ import annotations

from collections.abc import Iterator

from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from core.scope import ALL_USERS, NOT_GIVEN, AllUsers


class Scope:
    """What an API key may reach: everything (admin keys, OM_API_KEY, an open server) or
    exactly one user's memories (a user-scoped key)."""

    def __init__(self, user_id: str | None = None) -> None:
        self.user_id = user_id

    @property
    def is_admin(self) -> bool:
        return self.user_id is None

    def check_user(self, user_id: str) -> str:
        """A user named in the path or body: a scoped key may only name its own."""
        if self.user_id is not None and user_id != self.user_id:
            raise PermissionDenied(f"this API key may only access user {self.user_id}")
        return user_id

    def for_write(self, requested: object) -> str | None:
        """The owner of a new memory: a scoped key's own user, whatever it sent or omitted."""
        if self.user_id is None:
            return None if requested is NOT_GIVEN else requested  # type: ignore[return-value]
        if requested is NOT_GIVEN or requested is None:
            return self.user_id
        return self.check_user(requested)  # type: ignore[arg-type]

    def for_read(self, requested: object = NOT_GIVEN) -> str | AllUsers | None:
        """The users a listing or search covers: unfiltered means everything for an admin
        key and the key's own user for a scoped key."""
        if self.user_id is None:
            return ALL_USERS if requested is NOT_GIVEN else requested  # type: ignore[return-value]
        if requested is NOT_GIVEN:
            return self.user_id
        return self.check_user(requested)  # type: ignore[arg-type]

    @property
    def visible(self) -> str | AllUsers:
        """Whose memories can be fetched by id (others' answer 404, as if absent)."""
        return ALL_USERS if self.user_id is None else self.user_id

    def require_admin(self) -> None:
        if self.user_id is not None:
            raise PermissionDenied("this API key may not act on all users")


def named_users(request: Request, view) -> Iterator[object]:
    """Every user a request names: in its path, in its query string (each value), and where
    a body carries one (user_id, filters.user_id, items[].user_id)."""
    yield getattr(view, "kwargs", {}).get("user_id")
    yield from request.query_params.getlist("user_id")
    data = request.data
    if not isinstance(data, dict):
        return
    yield data.get("user_id")
    filters = data.get("filters")
    if isinstance(filters, dict):
        yield filters.get("user_id")
    items = data.get("items")
    if isinstance(items, list):
        yield from (item.get("user_id") for item in items if isinstance(item, dict))


class NamesOnlyItsUser(BasePermission):
    """A user-scoped key naming another user anywhere in a request is refused (403), also
    where the endpoint would not read that name (`?user_id=` on an add): a client must never
    believe it acted for a user it did not."""

    def has_permission(self, request: Request, view) -> bool:
        scope: Scope = request.user.scope
        if scope.user_id is None:
            return True
        for user_id in named_users(request, view):
            # Non-strings are left to the serializers, which answer 400.
            if isinstance(user_id, str):
                scope.check_user(user_id)
        return True
