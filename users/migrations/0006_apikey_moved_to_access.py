"""ApiKey now belongs to the access app (access/migrations/0001): forgotten here, table kept."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("users", "0005_summary_generations"),
        ("access", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="ApiKey")],
            database_operations=[],
        ),
    ]
