"""ApiKey: a key stored as data, admin (every user) or scoped to one user."""

from __future__ import annotations

from django.db import models


class ApiKeyQuerySet(models.QuerySet):
    def active(self) -> ApiKeyQuerySet:
        return self.filter(revoked_at__isnull=True)


class ApiKey(models.Model):
    """An API key stored as data: only its SHA-256 is kept (the key is shown once)."""

    name = models.CharField(max_length=100, blank=True, default="")
    # Null for an admin key (every user); otherwise the one user the key can reach.
    user_id = models.CharField(max_length=128, null=True, blank=True, db_index=True)  # noqa: DJ001
    prefix = models.CharField(max_length=16, help_text="the key's first characters, to spot it")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        # The table the users app created (users/migrations/0004): the model moved, its rows
        # did not.
        db_table = "users_apikey"
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user_id or 'admin'})"
