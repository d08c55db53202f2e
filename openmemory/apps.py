"""Project app config: binds the Celery app in every process that loads Django."""

from __future__ import annotations

from django.apps import AppConfig


class OpenMemoryConfig(AppConfig):
    name = "openmemory"
    verbose_name = "OpenMemory"

    def ready(self) -> None:
        # Importing the Celery app here makes @shared_task bind to it in every process.
        from openmemory.celery import app  # noqa: F401
