"""Who a read or write covers, as values every app shares: every user, or no user named."""

from __future__ import annotations


class AllUsers:
    def __repr__(self) -> str:
        return "ALL_USERS"


#: Every user's memories (and the shared pool), as opposed to None: the shared pool only.
ALL_USERS = AllUsers()
#: A request that did not name a user at all.
NOT_GIVEN = object()
