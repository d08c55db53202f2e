"""The lexical index as a table of terms (one implementation for both databases, with each
user's own term statistics), each memory's place in its user's sequence, and the end of the
database-specific full-text structures of 0004 (PostgreSQL GIN index, SQLite FTS5)."""

import django.db.models.deletion
from django.db import migrations, models

from memories.text import terms

DROP_FULLTEXT = {
    "postgresql": ["DROP INDEX IF EXISTS memory_content_fts"],
    "sqlite": [
        "DROP TRIGGER IF EXISTS memories_memory_fts_insert",
        "DROP TRIGGER IF EXISTS memories_memory_fts_update",
        "DROP TRIGGER IF EXISTS memories_memory_fts_delete",
        "DROP TABLE IF EXISTS memories_memory_fts",
        "DROP TABLE IF EXISTS memories_memory_fts_key",
    ],
}


def drop_fulltext(apps, schema_editor):
    for sql in DROP_FULLTEXT.get(schema_editor.connection.vendor, []):
        schema_editor.execute(sql)


def backfill(apps, schema_editor):
    """Positions by creation order within each user, and the terms of every memory."""
    Memory = apps.get_model("memories", "Memory")
    MemoryTerm = apps.get_model("memories", "MemoryTerm")
    rows = Memory.objects.order_by("user_id", "created_at", "id").values_list(
        "id", "user_id", "content"
    )
    position, owner, pending, batch = 0, object(), [], []
    for memory_id, user_id, content in rows.iterator(chunk_size=2000):
        if user_id != owner:
            owner, position = user_id, 0
        position += 1
        counts = terms(content)
        length = sum(counts.values())
        batch.append(Memory(pk=memory_id, position=position, term_count=length))
        pending += [
            MemoryTerm(memory_id=memory_id, user_id=user_id, term=term, frequency=n, length=length)
            for term, n in counts.items()
        ]
        if len(batch) >= 2000:
            Memory.objects.bulk_update(batch, ["position", "term_count"])
            MemoryTerm.objects.bulk_create(pending, batch_size=2000)
            pending, batch = [], []
    Memory.objects.bulk_update(batch, ["position", "term_count"])
    MemoryTerm.objects.bulk_create(pending, batch_size=2000)


class Migration(migrations.Migration):
    dependencies = [
        ("memories", "0004_fulltext"),
    ]

    operations = [
        migrations.RunPython(drop_fulltext, migrations.RunPython.noop),
        migrations.CreateModel(
            name="MemoryTerm",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("user_id", models.CharField(blank=True, max_length=128, null=True)),
                ("term", models.CharField(max_length=64)),
                ("frequency", models.PositiveIntegerField()),
                ("length", models.PositiveIntegerField()),
            ],
        ),
        migrations.AddField(
            model_name="memory",
            name="position",
            field=models.PositiveBigIntegerField(default=0, editable=False),
        ),
        migrations.AddField(
            model_name="memory",
            name="term_count",
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
        migrations.AddIndex(
            model_name="memory",
            index=models.Index(fields=["user_id", "position"], name="memory_user_position"),
        ),
        migrations.AddIndex(
            model_name="memory",
            index=models.Index(fields=["user_id", "term_count"], name="memory_user_length"),
        ),
        migrations.AddField(
            model_name="memoryterm",
            name="memory",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="terms",
                to="memories.memory",
            ),
        ),
        migrations.AddIndex(
            model_name="memoryterm",
            index=models.Index(
                fields=["user_id", "term", "memory", "frequency", "length"],
                name="memory_term_user_term",
            ),
        ),
        migrations.AddConstraint(
            model_name="memoryterm",
            constraint=models.UniqueConstraint(
                fields=("memory", "term"), name="memory_term_unique"
            ),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
