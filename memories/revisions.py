"""Scope revisions: the token every write to a user's memories changes, and places in the
user's sequence (see ScopeRevision)."""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from django.db import connection

from memories.models import ScopeRevision

_TABLE = ScopeRevision._meta.db_table
_MEMORIES = "memories_memory"


def scope_key(user_id: str | None) -> str:
    return ScopeRevision.SHARED if user_id is None else user_id


def _token() -> int:
    return secrets.randbits(62) + 1


def _upsert(user_id: str | None, added: int, *, new_token: bool = True) -> int:
    """One statement: `added` more places taken in the user's sequence, and, with
    `new_token`, a new token for the user's scope; returns the last place now taken. A scope
    seen for the first time starts after the user's highest stored place (memories stored
    before the table existed), with a new token."""
    owner = "user_id IS NULL" if user_id is None else "user_id = %s"
    params: list[object] = [scope_key(user_id), _token(), added]
    if user_id is not None:
        params.append(user_id)
    params.append(added)
    token = "revision = excluded.revision, " if new_token else ""
    # The WHERE clause is required: SQLite cannot otherwise tell the upsert's ON from a join.
    sql = (
        f"INSERT INTO {_TABLE} (scope, revision, last_position) "
        f"SELECT %s, %s, COALESCE(MAX(position), 0) + %s FROM {_MEMORIES} WHERE {owner} "
        f"ON CONFLICT (scope) DO UPDATE SET {token}"
        f"last_position = {_TABLE}.last_position + %s RETURNING last_position"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.fetchone()[0])


def _upsert_many(counts: dict[str, int], changed: set[str | None]) -> dict[str, int]:
    """_upsert for several users (never the shared pool) in two statements whatever their
    number, rows taken in sorted order as one by one: a batch spread over many users cost
    two statements per user before. First the scopes seen for the first time (after their
    highest stored place, with a new token), then every scope's places and, for the users
    in `changed`, token; returns each user's last place now taken."""
    users = sorted(counts)
    rows = ", ".join(["(%s, %s)"] * len(users))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {_TABLE} (scope, revision, last_position) "
            f"SELECT column1, column2, COALESCE((SELECT MAX(position) FROM {_MEMORIES} "
            f"WHERE user_id = column1), 0) FROM (VALUES {rows}) AS new_scopes WHERE true "
            "ON CONFLICT (scope) DO NOTHING",
            [value for user_id in users for value in (user_id, _token())],
        )
        # Every row exists now, so each goes through DO UPDATE: a revision of 0 there means
        # "keep the token" (tokens are positive).
        rows = ", ".join(["(%s, %s, %s)"] * len(users))
        cursor.execute(
            f"INSERT INTO {_TABLE} (scope, revision, last_position) VALUES {rows} "
            "ON CONFLICT (scope) DO UPDATE SET "
            f"revision = CASE WHEN excluded.revision > 0 THEN excluded.revision "
            f"ELSE {_TABLE}.revision END, "
            f"last_position = {_TABLE}.last_position + excluded.last_position "
            "RETURNING scope, last_position",
            [
                value
                for user_id in users
                for value in (user_id, _token() if user_id in changed else 0, counts[user_id])
            ],
        )
        return {scope: int(last) for scope, last in cursor.fetchall()}


def claim_positions(
    counts: dict[str | None, int], *, changed: Iterable[str | None] = ()
) -> dict[str | None, int]:
    """The first of `n` consecutive new places for each user (inside the caller's write
    transaction). On PostgreSQL the row lock makes concurrent adds for one user take
    distinct places.

    New memories alone leave the user's token as it is: a cached copy of the user's
    memories (memories/search_cache.py) then reads only the rows placed after its last one
    rather than everything again. The users in `changed`, whose stored memories this write
    also changes, get a new token, as every other write gives them (touch).

    Rows are locked in one order by every write (the shared pool first, then users sorted),
    so concurrent writes wait for each other instead of deadlocking."""
    changed = set(changed)
    last = {}
    if None in counts:
        last[None] = _upsert(None, counts[None], new_token=None in changed)
    users = {user_id: n for user_id, n in counts.items() if user_id is not None}
    if len(users) == 1:
        ((user_id, n),) = users.items()
        last[user_id] = _upsert(user_id, n, new_token=user_id in changed)
    elif users:
        last.update(_upsert_many(users, changed))
    return {user_id: last[user_id] - n + 1 for user_id, n in counts.items()}


def touch(user_ids: Iterable[str | None]) -> None:
    """A new token for each user's scope: their memories changed (edit, delete, salience)."""
    user_ids = set(user_ids)
    claim_positions(dict.fromkeys(user_ids, 0), changed=user_ids)


def touch_all() -> None:
    """A new token that every cached scope depends on: a change across all users (decay,
    re-embedding)."""
    sql = (
        f"INSERT INTO {_TABLE} (scope, revision, last_position) VALUES (%s, %s, 0) "
        f"ON CONFLICT (scope) DO UPDATE SET revision = excluded.revision"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [ScopeRevision.ALL, _token()])


def current(user_id: str | None) -> tuple:
    """What a cached copy of the user's memories is checked against, in one read: the
    user's token, the all-users token (None where never set), and how many memories the
    user holds and their highest place (from the (user_id, position) index). The last two
    catch rows deleted or inserted without going through the services (a script, a
    manual cleanup), which change no token."""
    owner = "user_id IS NULL" if user_id is None else "user_id = %s"
    params = [scope_key(user_id), ScopeRevision.ALL] + ([] if user_id is None else [user_id])
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT revision FROM {_TABLE} WHERE scope = %s), "
            f"(SELECT revision FROM {_TABLE} WHERE scope = %s), "
            f"COUNT(*), MAX(position) FROM {_MEMORIES} WHERE {owner}",
            params,
        )
        return tuple(cursor.fetchone())
