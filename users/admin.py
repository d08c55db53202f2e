"""Django admin for user summaries (a first version; the operators' issue extends it)."""

from django.contrib import admin

from users.models import UserSummary


@admin.register(UserSummary)
class UserSummaryAdmin(admin.ModelAdmin):
    list_display = ["user_id", "reflection_count", "memory_count", "stale", "updated_at"]
    list_filter = ["stale"]
    search_fields = ["user_id"]
