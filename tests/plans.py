"""Query plans for tests that check a statement is served by an index, on either database."""

from __future__ import annotations

from django.db import connection


def assert_uses_index(sql: str, params: tuple | list, index: str, table: str) -> None:
    """The planner serves `sql` through `index`, not by reading all of `table`."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")  # tiny tables: ask for the index
            cursor.execute("EXPLAIN " + sql, params)
            plan = " ".join(row[0] for row in cursor.fetchall())
            assert index in plan and "Seq Scan" not in plan, plan
        else:
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
            plan = " ".join(str(row[-1]) for row in cursor.fetchall())
            assert index in plan and f"SCAN {table}" not in plan, plan
