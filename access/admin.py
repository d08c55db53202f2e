"""Django admin for API keys: created through the service, shown once, then only revoked."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from access.models import ApiKey
from access.services import api_key_create, api_key_revoke
from core.exceptions import ServiceError
from core.validation import clean_user_id


class ApiKeyForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ["name", "user_id"]
        help_texts = {"user_id": "Leave empty for an admin key that reaches every user."}

    def clean_user_id(self) -> str | None:
        value = self.cleaned_data.get("user_id") or None
        if value is not None:
            try:
                clean_user_id(value)
            except ServiceError as exc:
                raise forms.ValidationError(exc.message) from None
        return value


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are created through the service (only the hash is stored) and shown once, in the
    confirmation message; afterwards they can only be revoked."""

    form = ApiKeyForm
    list_display = ["prefix", "name", "scope", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "user_id", "prefix"]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    @admin.display(description="reaches")
    def scope(self, obj: ApiKey) -> str:
        return obj.user_id or "every user (admin)"

    def has_change_permission(self, request: HttpRequest, obj: ApiKey | None = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: ApiKey | None = None) -> bool:
        return False  # revoke instead: the row keeps the key's history

    def save_model(self, request: HttpRequest, obj: ApiKey, form, change: bool) -> None:
        key, raw = api_key_create(user_id=obj.user_id, name=obj.name)
        obj.pk, obj.prefix = key.pk, key.prefix
        self.message_user(
            request,
            f"API key created. Copy it now, it will not be shown again: {raw}",
            messages.WARNING,
        )

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet) -> None:
        for key in queryset:
            api_key_revoke(key_id=key.pk)
        self.message_user(request, f"Revoked {queryset.count()} key(s).", messages.SUCCESS)
