"""Which users' memories a request may touch, as decided by the API key that made it."""

from __future__ import annotations

from rest_framework.exceptions import PermissionDenied


class _AllUsers:
    def __repr__(self) -> str:
        return "ALL_USERS"


#: Every user's memories (and the shared pool), as opposed to None: the shared pool only.
ALL_USERS = _AllUsers()
#: A request that did not name a user at all.
NOT_GIVEN = object()


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

    def for_read(self, requested: object = NOT_GIVEN) -> str | _AllUsers | None:
        """The users a listing or search covers: unfiltered means everything for an admin
        key and the key's own user for a scoped key."""
        if self.user_id is None:
            return ALL_USERS if requested is NOT_GIVEN else requested  # type: ignore[return-value]
        if requested is NOT_GIVEN:
            return self.user_id
        return self.check_user(requested)  # type: ignore[arg-type]

    @property
    def visible(self) -> str | _AllUsers:
        """Whose memories can be fetched by id (others' answer 404, as if absent)."""
        return ALL_USERS if self.user_id is None else self.user_id

    def require_admin(self) -> None:
        if self.user_id is not None:
            raise PermissionDenied("this API key may not act on all users")
