"""ApiKey moves here from the users app: the table (users_apikey) and its rows stay where they
are, only Django's idea of the model's owner changes (users/migrations/0006 drops it there).
The model's content type moves with it, so permissions granted on API keys and the admin's
history of them are kept."""

from django.db import migrations, models


def content_type_to(app_label: str, other: str):
    def move(apps, schema_editor) -> None:
        ContentType = apps.get_model("contenttypes", "ContentType")
        types = ContentType.objects.using(schema_editor.connection.alias)
        if not types.filter(app_label=app_label, model="apikey").exists():
            types.filter(app_label=other, model="apikey").update(app_label=app_label)

    return move


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("users", "0004_api_keys"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="ApiKey",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("name", models.CharField(blank=True, default="", max_length=100)),
                        (
                            "user_id",
                            models.CharField(blank=True, db_index=True, max_length=128, null=True),
                        ),
                        (
                            "prefix",
                            models.CharField(
                                help_text="the key's first characters, to spot it", max_length=16
                            ),
                        ),
                        ("key_hash", models.CharField(editable=False, max_length=64, unique=True)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("last_used_at", models.DateTimeField(blank=True, null=True)),
                        ("revoked_at", models.DateTimeField(blank=True, null=True)),
                    ],
                    options={
                        "verbose_name": "API key",
                        "ordering": ["-created_at"],
                        "db_table": "users_apikey",
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(
            content_type_to("access", "users"), content_type_to("users", "access"), elidable=False
        ),
    ]
