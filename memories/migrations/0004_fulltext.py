"""Full-text search on memory content: a GIN expression index on PostgreSQL, an FTS5 table
kept in step by triggers on SQLite (memories/lexical.py queries both)."""

from django.db import migrations

POSTGRES_CREATE = [
    # Must match PostgresFullText.TSVECTOR exactly, or the planner cannot use it.
    "CREATE INDEX IF NOT EXISTS memory_content_fts ON memories_memory "
    "USING gin (to_tsvector('english'::regconfig, content))",
]
POSTGRES_DROP = ["DROP INDEX IF EXISTS memory_content_fts"]

# memories_memory's rowids are not stable (its key is a UUID, and VACUUM may renumber
# rowids of such tables), so the FTS rows are keyed through a table of their own.
# `owner` holds one token per user ("u" + hex of the user id + "0"; "u0" for the shared pool)
# so that a user's search intersects posting lists instead of matching everyone's rows. The
# trailing digit keeps the Porter stemmer off it (its rules all strip letter suffixes).
OWNER = "'u' || coalesce(hex({row}.user_id), '') || '0'"
SQLITE_CREATE = [
    "CREATE TABLE memories_memory_fts_key ("
    "id INTEGER PRIMARY KEY AUTOINCREMENT, memory_id char(32) NOT NULL UNIQUE)",
    "CREATE VIRTUAL TABLE memories_memory_fts USING fts5("
    "owner, content, tokenize = 'porter unicode61 remove_diacritics 2')",
    f"""CREATE TRIGGER memories_memory_fts_insert AFTER INSERT ON memories_memory BEGIN
        INSERT INTO memories_memory_fts_key (memory_id) VALUES (new.id);
        INSERT INTO memories_memory_fts (rowid, owner, content) VALUES (
            (SELECT id FROM memories_memory_fts_key WHERE memory_id = new.id),
            {OWNER.format(row="new")}, new.content);
    END""",
    f"""CREATE TRIGGER memories_memory_fts_update
    AFTER UPDATE OF content, user_id ON memories_memory BEGIN
        UPDATE memories_memory_fts
        SET owner = {OWNER.format(row="new")}, content = new.content
        WHERE rowid = (SELECT id FROM memories_memory_fts_key WHERE memory_id = old.id);
    END""",
    """CREATE TRIGGER memories_memory_fts_delete AFTER DELETE ON memories_memory BEGIN
        DELETE FROM memories_memory_fts
        WHERE rowid = (SELECT id FROM memories_memory_fts_key WHERE memory_id = old.id);
        DELETE FROM memories_memory_fts_key WHERE memory_id = old.id;
    END""",
    # Memories stored before this migration.
    "INSERT INTO memories_memory_fts_key (memory_id) SELECT id FROM memories_memory",
    "INSERT INTO memories_memory_fts (rowid, owner, content) "
    f"SELECT k.id, {OWNER.format(row='m')}, m.content "
    "FROM memories_memory m JOIN memories_memory_fts_key k ON k.memory_id = m.id",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS memories_memory_fts_insert",
    "DROP TRIGGER IF EXISTS memories_memory_fts_update",
    "DROP TRIGGER IF EXISTS memories_memory_fts_delete",
    "DROP TABLE IF EXISTS memories_memory_fts",
    "DROP TABLE IF EXISTS memories_memory_fts_key",
]


def _run(schema_editor, statements: dict[str, list[str]]) -> None:
    for sql in statements.get(schema_editor.connection.vendor, []):
        schema_editor.execute(sql)


def forwards(apps, schema_editor):
    _run(schema_editor, {"postgresql": POSTGRES_CREATE, "sqlite": SQLITE_CREATE})


def backwards(apps, schema_editor):
    _run(schema_editor, {"postgresql": POSTGRES_DROP, "sqlite": SQLITE_DROP})


class Migration(migrations.Migration):
    dependencies = [("memories", "0003_memory_decayed_at")]

    operations = [migrations.RunPython(forwards, backwards)]
