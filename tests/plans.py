"""Query plans for tests that check a statement is served by an index, on either database."""

from __future__ import annotations

from django.db import connection, transaction


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


def search_plan(sql: str) -> str:
    """PostgreSQL's plan for a vector search `sql` with scans and sorts ruled out: at test
    sizes those are cheaper, and ruled out the planner takes an index whenever the query's
    form lets it (bench/ shows it choosing the HNSW index by itself at 100k rows). The
    settings last for this plan only, in a test's transaction or outside one."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("EXPLAIN " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())
