"""Memory rows leave room on their page for one newer version, so that decay, reinforcement
and boosts update them in place (PostgreSQL's HOT updates) instead of adding an entry to
every index, the HNSW graph included, for each row they touch.

At fillfactor 100 each 8 kB page held four 384-dimension rows and no room: every update
wrote a new row version elsewhere and inserted it into all ten indexes. The HNSW insert
alone made the hourly decay of 1,000 rows take 916 ms instead of 60. Pages written from now
on are filled to 75% (three such rows and room for a fourth version); pages already full
gain room as vacuum clears their old versions, or at once with VACUUM FULL. No-op on SQLite,
which rewrites a row in place."""

from django.db import migrations

FILLFACTOR = 75


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE memories_memory SET (fillfactor = {FILLFACTOR})")


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE memories_memory RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [("memories", "0009_memory_term_term_first")]

    operations = [migrations.RunPython(forwards, backwards)]
