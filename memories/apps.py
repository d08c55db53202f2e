"""App config for memories: after migrate, the local embedding model is made ready."""

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class MemoriesConfig(AppConfig):
    name = "memories"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported once the app registry is ready: embeddings reaches DRF, whose settings
        # import the authentication classes and their models.
        from memories import embeddings

        post_migrate.connect(
            embeddings.prepare_after_migrate, sender=self, dispatch_uid="memories.model"
        )
