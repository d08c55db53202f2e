"""Django admin for memories and tags (a first version; the operators' issue extends it)."""

from django.contrib import admin

from memories.models import Memory, Tag


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    search_fields = ["name"]


@admin.register(Memory)
class MemoryAdmin(admin.ModelAdmin):
    list_display = ["short_content", "user_id", "primary_sector", "salience", "created_at"]
    list_filter = ["primary_sector"]
    search_fields = ["user_id", "content"]
    readonly_fields = ["content_hash", "embedding_model", "created_at", "updated_at"]
    exclude = ["embedding"]
    show_full_result_count = False

    def get_queryset(self, request):
        return super().get_queryset(request).defer("embedding")

    @admin.display(description="content")
    def short_content(self, obj: Memory) -> str:
        return obj.content[:80]
