"""The lexical index leads with the term, so that searches without a user filter (and the
bounded reads of lexical.LargeScope) use it too."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("memories", "0008_memory_embedding_model_index"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="memoryterm",
            index=models.Index(
                fields=["term", "user_id", "memory", "frequency", "length"],
                name="memory_term_term_user",
            ),
        ),
        migrations.RemoveIndex(model_name="memoryterm", name="memory_term_user_term"),
    ]
