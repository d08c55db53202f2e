"""App config: registers the scrape-time collectors with the single-process registry."""

from __future__ import annotations

from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    name = "observability"
    verbose_name = "Observability"

    def ready(self) -> None:
        from observability.collectors import register_default

        register_default()
