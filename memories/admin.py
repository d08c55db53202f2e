"""Django admin for memories and tags: fast on big tables, and writes go through the services."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.functional import cached_property

from core.exceptions import ServiceError
from core.validation import clean_user_id
from memories import revisions
from memories.models import Memory, Tag
from memories.services import memory_create, memory_delete, memory_update

admin.site.site_header = "OpenMemory administration"
admin.site.site_title = "OpenMemory admin"
admin.site.index_title = "Memories, users and schedules"
# "View site" in the admin header leads to the staff dashboard.
admin.site.site_url = "/dashboard/"


class CappedCountPaginator(Paginator):
    """Counts at most CAP + 1 rows: COUNT(*) over a million-row table (or a search that
    matches most of it) costs more than the page itself. Past the cap the admin shows
    "more than CAP" (templates/admin/pagination.html) and pages up to the cap."""

    CAP = 10_000

    @property
    def cap_display(self) -> str:
        return f"{self.CAP:,}"

    @cached_property
    def count(self) -> int:
        return self.object_list.order_by().values("pk")[: self.CAP + 1].count()

    @property
    def count_capped(self) -> bool:
        return self.count > self.CAP


class FastListAdmin(admin.ModelAdmin):
    """Changelist settings every big-table admin here shares."""

    paginator = CappedCountPaginator
    show_full_result_count = False
    # Facet counts are one COUNT per filter choice over the whole table.
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50


class TagFilter(admin.SimpleListFilter):
    title = "tag"
    parameter_name = "tag"
    # The sidebar lists this many tags; any other tag still filters through ?tag=<name>.
    MAX_CHOICES = 50

    def lookups(self, request, model_admin):
        names = Tag.objects.order_by("name").values_list("name", flat=True)[: self.MAX_CHOICES]
        return [(name, name) for name in names]

    def queryset(self, request, queryset):
        value = self.value()
        # The memories model's own tag filter: a subquery, never a join with duplicate rows.
        return queryset.with_any_tag([value]) if value else queryset


class MemoryForm(forms.ModelForm):
    class Meta:
        model = Memory
        fields = ["user_id", "content", "tags", "metadata"]

    def clean_user_id(self) -> str | None:
        value = self.cleaned_data.get("user_id") or None
        if value is None:
            return None
        try:
            return clean_user_id(value)
        except ServiceError as exc:
            raise forms.ValidationError(exc.message) from None


@admin.register(Memory)
class MemoryAdmin(FastListAdmin):
    form = MemoryForm

    class Media:
        css = {"all": ["dashboard/admin.css"]}

    list_display = [
        "short_content",
        "user_id",
        "primary_sector",
        "tag_names",
        "salience",
        "created_at",
    ]
    list_filter = ["primary_sector", TagFilter, "created_at"]
    search_fields = ["content", "=user_id"]
    search_help_text = "Words in the content, or an exact user id."
    ordering = ["-created_at"]
    autocomplete_fields = ["tags"]
    readonly_fields = [
        "id",
        "primary_sector",
        "sectors",
        "salience",
        "decay_lambda",
        "version",
        "created_at",
        "updated_at",
        "last_seen_at",
        "decayed_at",
        "embedding_model",
        "embedding_dim",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Memory]:
        # The embedding is kilobytes per row and no page shows it.
        return super().get_queryset(request).defer("embedding").prefetch_related("tags")

    def get_fields(self, request: HttpRequest, obj: Memory | None = None) -> list[str]:
        if obj is None:
            return ["user_id", "content", "tags", "metadata"]
        return ["content", "tags", "metadata", "user_id", *self.readonly_fields]

    def get_readonly_fields(self, request: HttpRequest, obj: Memory | None = None) -> list[str]:
        # A memory never moves between users: the user is fixed once it exists.
        return [*self.readonly_fields, "user_id"] if obj is not None else []

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        # Lets the dashboard link to one user's memories (?user_id=...), served by its index.
        if lookup in ("user_id", "user_id__exact"):
            return True
        return super().lookup_allowed(lookup, value, request)

    @admin.display(description="content")
    def short_content(self, obj: Memory) -> str:
        return obj.content if len(obj.content) <= 80 else obj.content[:79] + "…"

    @admin.display(description="tags")
    def tag_names(self, obj: Memory) -> str:
        return ", ".join(tag.name for tag in obj.tags.all())

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ServiceError as exc:
            # A rule only the service knows (e.g. the user already holds identical content):
            # the admin's transaction has rolled back, so report it and show the form again.
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def save_model(self, request: HttpRequest, obj: Memory, form: forms.Form, change: bool) -> None:
        data = form.cleaned_data
        tags = [tag.name for tag in data["tags"]] if "tags" in data else None
        if not change:
            created = memory_create(
                content=data["content"],
                user_id=data.get("user_id"),
                tags=tags,
                metadata=data.get("metadata") or {},
            )
            if created.deduplicated:
                self.message_user(
                    request, "This user already had this memory; nothing new was stored.", "warning"
                )
            # The admin logs and redirects to the object it was given: make it the stored one.
            obj.pk = created.memory.pk
            obj._state.adding = False
            return
        changed = set(form.changed_data)
        memory_update(
            memory_id=str(obj.pk),
            content=data["content"] if "content" in changed else None,
            tags=tags if "tags" in changed else None,
            metadata=(data["metadata"] or {}) if "metadata" in changed else None,
        )

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        # Tags were written by the service in save_model; saving the form's m2m would write
        # them a second time behind its back.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def delete_model(self, request: HttpRequest, obj: Memory) -> None:
        memory_delete(memory_id=str(obj.pk))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Memory]) -> None:
        # One service call per memory, so each user's summary is invalidated as the API does.
        for memory_id in queryset.values_list("pk", flat=True):
            memory_delete(memory_id=str(memory_id))


@admin.register(Tag)
class TagAdmin(FastListAdmin):
    list_display = ["name", "memory_count"]
    search_fields = ["name"]
    ordering = ["name"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tag]:
        # A correlated subquery per tag on the page (served by the link table's tag index),
        # rather than a GROUP BY over every link in the table.
        links = (
            Memory.tags.through.objects.filter(tag_id=OuterRef("pk"))
            .order_by()
            .values("tag_id")
            .annotate(n=Count("pk"))
            .values("n")
        )
        counted = Coalesce(Subquery(links, output_field=IntegerField()), 0)
        return super().get_queryset(request).annotate(memory_count=counted)

    @admin.display(description="memories", ordering="memory_count")
    def memory_count(self, obj: Tag) -> int:
        return obj.memory_count

    # A renamed or deleted tag changes how every memory holding it is shown: searches must
    # not answer from copies made before (memories/search_cache.py).
    def save_model(self, request: HttpRequest, obj: Tag, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        revisions.touch_all()

    def delete_model(self, request: HttpRequest, obj: Tag) -> None:
        super().delete_model(request, obj)
        revisions.touch_all()

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Tag]) -> None:
        super().delete_queryset(request, queryset)
        revisions.touch_all()
