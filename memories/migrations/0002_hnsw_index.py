"""HNSW index for large-scope vector search on PostgreSQL (no-op on SQLite)."""

from django.db import migrations

# Partial on the dimension so rows of other models/dimensions never hit the cast; queries
# that want this index repeat both the cast and the predicate (memories/vector_search.py).
CREATE = (
    "CREATE INDEX IF NOT EXISTS memory_embedding_hnsw_384 ON memories_memory "
    "USING hnsw ((embedding::vector(384)) vector_cosine_ops) "
    "WHERE embedding_dim = 384"
)
DROP = "DROP INDEX IF EXISTS memory_embedding_hnsw_384"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("memories", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
