"""Adds wait for the HNSW graph no longer: a new memory is stored `vector_pending`, outside
the index's predicate, and queued in PendingVector; the vector-search backend indexes it in
the background (memories/vector_search.py). The HNSW index is rebuilt with the new
predicate; on a large table that build is the slow step of this migration (minutes per
million memories)."""

import django.db.models.deletion
from django.db import migrations, models

CREATE = (
    "CREATE INDEX memory_embedding_hnsw_384 ON memories_memory "
    "USING hnsw ((embedding::vector(384)) vector_cosine_ops) "
    "WHERE embedding_dim = 384 AND NOT vector_pending"
)
CREATE_BEFORE = (
    "CREATE INDEX memory_embedding_hnsw_384 ON memories_memory "
    "USING hnsw ((embedding::vector(384)) vector_cosine_ops) "
    "WHERE embedding_dim = 384"
)
DROP = "DROP INDEX IF EXISTS memory_embedding_hnsw_384"
# The queue row goes with its memory, deleted by the database after the memory row is locked
# (see PendingVector.memory). SQLite never queues a memory, so it needs no constraint.
CASCADE = (
    "ALTER TABLE memories_pendingvector ADD CONSTRAINT memory_pendingvector_memory "
    "FOREIGN KEY (memory_id) REFERENCES memories_memory (id) ON DELETE CASCADE"
)


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CASCADE)
        schema_editor.execute(DROP)
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)
        schema_editor.execute(CREATE_BEFORE)


class Migration(migrations.Migration):
    dependencies = [("memories", "0010_memory_fillfactor")]

    operations = [
        migrations.CreateModel(
            name="PendingVector",
            fields=[
                (
                    "memory",
                    models.OneToOneField(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to="memories.memory",
                    ),
                ),
            ],
        ),
        # Existing memories are in the graph already: the column's default is False.
        migrations.AddField(
            model_name="memory",
            name="vector_pending",
            field=models.BooleanField(default=False, editable=False),
        ),
        migrations.RunPython(forwards, backwards),
    ]
