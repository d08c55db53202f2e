"""Django admin for user summaries: freshness at a glance, and regeneration through Celery."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest

from memories.admin import FastListAdmin
from memories.models import Memory
from users.models import UserSummary
from users.tasks import regenerate_user_summary


@admin.register(UserSummary)
class UserSummaryAdmin(FastListAdmin):
    list_display = [
        "user_id",
        "short_summary",
        "reflection_count",
        "memory_count",
        "memories_now",
        "pending_memories",
        "stale",
        "invalidated",
        "provider",
        "updated_at",
    ]
    list_filter = ["stale", "invalidated", "provider"]
    search_fields = ["=user_id"]
    search_help_text = "An exact user id."
    ordering = ["user_id"]
    actions = ["regenerate_summaries"]

    class Media:
        css = {"all": ["dashboard/admin.css"]}

    def get_queryset(self, request: HttpRequest) -> QuerySet[UserSummary]:
        # Counted per row on the page through the memories' user index: one query for the
        # page, never a GROUP BY over every memory.
        mine = (
            Memory.objects.filter(user_id=OuterRef("user_id"))
            .order_by()
            .values("user_id")
            .annotate(n=Count("pk"))
            .values("n")
        )
        counted = Coalesce(Subquery(mine, output_field=IntegerField()), 0)
        return super().get_queryset(request).annotate(memories_now=counted)

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Summaries are created by the memory services, never by hand.
        return False

    def has_change_permission(self, request: HttpRequest, obj: UserSummary | None = None) -> bool:
        # Every field is bookkeeping the services own, so a summary's page is read-only; the
        # list keeps change permission for the regenerate action.
        if obj is not None:
            return False
        return super().has_change_permission(request, obj)

    @admin.display(description="summary")
    def short_summary(self, obj: UserSummary) -> str:
        return obj.summary if len(obj.summary) <= 100 else obj.summary[:99] + "…"

    @admin.display(description="memories now", ordering="memories_now")
    def memories_now(self, obj: UserSummary) -> int:
        return obj.memories_now

    @admin.action(description="Regenerate summary", permissions=["change"])
    def regenerate_summaries(self, request: HttpRequest, queryset: QuerySet[UserSummary]) -> None:
        user_ids = list(queryset.values_list("user_id", flat=True))
        failed: list[str] = []
        error = ""
        for user_id in user_ids:
            try:
                regenerate_user_summary.delay(user_id)
            except Exception as exc:  # kombu raises several types for an unreachable broker
                failed.append(user_id)
                error = str(exc)
        sent = len(user_ids) - len(failed)
        if sent:
            done = "Regenerated" if settings.CELERY_TASK_ALWAYS_EAGER else "Queued regeneration of"
            noun = "summary" if sent == 1 else "summaries"
            self.message_user(request, f"{done} {sent} {noun}.", messages.SUCCESS)
        if failed:
            self.message_user(
                request,
                f"Could not enqueue {len(failed)} regeneration(s) ({', '.join(failed[:5])}): "
                f"{error}. Beat's sweep regenerates stale summaries.",
                messages.ERROR,
            )
