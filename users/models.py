"""UserSummary: a user's profile summary and the bookkeeping that schedules its refresh."""

from __future__ import annotations

from django.db import models


class UserSummary(models.Model):
    user_id = models.CharField(max_length=128, unique=True)
    summary = models.TextField(blank=True, default="")
    reflection_count = models.PositiveIntegerField(default=0)
    # Null until the first summary is generated.
    updated_at = models.DateTimeField(null=True, blank=True)
    memory_count = models.PositiveIntegerField(default=0, help_text="memories at last generation")
    # Memories added since the last generation; a regeneration is due at the interval.
    pending_memories = models.PositiveIntegerField(default=0)
    stale = models.BooleanField(default=True, db_index=True)
    # Set when a memory was edited or deleted: the text may quote content that no longer
    # exists, so it is rebuilt before it is served again.
    invalidated = models.BooleanField(default=False)
    # Set when a regeneration is enqueued, cleared when one runs: keeps concurrent adds from
    # enqueuing the same regeneration twice.
    queued_at = models.DateTimeField(null=True, blank=True)
    # Regenerations may overlap (an edit's rebuild, the endpoint, the admin, the sweep, a
    # redelivered task, two workers), so each one records `generation` when it starts and
    # finishes by comparing it with `summarized_generation`: a regeneration never overwrites a
    # text built from a later state, and recomputes `pending_memories`, `invalidated` and
    # `stale` from what it saw rather than clearing them. Only ever increase.
    generation = models.PositiveBigIntegerField(
        default=0, help_text="changes so far: one per memory added, edit, delete or request"
    )
    summarized_generation = models.PositiveBigIntegerField(
        default=0, help_text="the generation the stored text was built from"
    )
    memories_added = models.PositiveBigIntegerField(default=0, help_text="memories added so far")
    edited_generation = models.PositiveBigIntegerField(
        default=0, help_text="the generation of the latest edit or delete"
    )
    # Which summarizer wrote the text, and why the LLM was not used when it was configured.
    provider = models.CharField(max_length=32, blank=True, default="")
    fallback_reason = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["user_id"]
        verbose_name_plural = "user summaries"
        indexes = [
            # GET /health counts the queued regenerations on every call (load balancers
            # poll it): partial, so the count reads only those rows, not one row per user.
            models.Index(
                fields=["queued_at"],
                condition=models.Q(queued_at__isnull=False),
                name="summary_queued",
            ),
        ]

    def __str__(self) -> str:
        return self.user_id
