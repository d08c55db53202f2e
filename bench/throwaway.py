"""The throwaway database the in-process benchmarks run Django on: create, migrate, drop."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent


def add_database_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL URL whose database this script drops, creates and drops again "
        "(default: a SQLite file in a temporary directory)",
    )


def _admin_connect(url: str):
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name:
        sys.exit(f"bench: no database name in {url!r}")
    admin = urlunsplit(parts._replace(path="/postgres"))
    return psycopg.connect(admin, autocommit=True), name


def drop_postgres(url: str) -> None:
    from psycopg import sql

    conn, name = _admin_connect(url)
    with conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def recreate_postgres(url: str) -> None:
    from psycopg import sql

    drop_postgres(url)
    conn, name = _admin_connect(url)
    with conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


@contextlib.contextmanager
def throwaway_django(
    database_url: str | None,
    name: str,
    *,
    keep: bool = False,
    reuse_dir: str | None = None,
) -> Iterator[str]:
    """Sets Django up on a fresh, migrated database and yields its URL.

    `database_url`: a PostgreSQL database to drop and create (default: a SQLite file in a
    temporary OM_DATA_DIR). `reuse_dir`: measure what an earlier `keep` run left instead of
    starting fresh (with `database_url`, that database is reused as it is). Afterwards the
    database (or directory) is dropped unless `keep` or `reuse_dir`. Settings a benchmark
    needs of its own (OM_EMBEDDINGS, ...) go into os.environ before entering."""
    reusing = reuse_dir is not None
    if database_url and not database_url.startswith(("postgres://", "postgresql://")):
        sys.exit("bench: --database-url must be a PostgreSQL URL")
    workdir = reuse_dir or tempfile.mkdtemp(prefix=f"om-{name}-")
    os.environ["OM_DATA_DIR"] = workdir
    if database_url:
        if not reusing:
            recreate_postgres(database_url)
        os.environ["DATABASE_URL"] = database_url
    else:
        os.environ["DATABASE_URL"] = f"sqlite:///{workdir}/{name}.sqlite3"
    # Background work (summaries) runs in-process, never onto a broker.
    os.environ.pop("CELERY_BROKER_URL", None)
    os.environ.setdefault("OM_LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "openmemory.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    try:
        call_command("migrate", verbosity=0)
        yield os.environ["DATABASE_URL"]
    finally:
        connection.close()
        if keep or reusing:
            print(f"  kept: {database_url or workdir}", file=sys.stderr)
        else:
            if database_url:
                drop_postgres(database_url)
            shutil.rmtree(workdir, ignore_errors=True)
