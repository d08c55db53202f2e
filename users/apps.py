"""App config for users: subscribes the summaries to memories' announcements."""

from django.apps import AppConfig


class UsersConfig(AppConfig):
    name = "users"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from users import receivers

        receivers.connect()
