"""Reads behind the staff dashboard: a few aggregate queries, whatever the number of rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db.models import Count, Max, Q

from core import clock
from memories.models import Memory, Tag
from memories.sectors import SECTOR_NAMES
from memories.selectors import Match, memory_list, memory_query
from users.models import UserSummary


@dataclass(frozen=True)
class ActiveUser:
    user_id: str
    added: int
    last_added_at: datetime


@dataclass(frozen=True)
class Freshness:
    fresh: int
    stale: int
    invalidated: int
    queued: int
    never_generated: int

    @property
    def total(self) -> int:
        return self.fresh + self.stale


@dataclass(frozen=True)
class Overview:
    memories: int
    users: int
    tags: int
    shared_pool: int
    per_sector: list[tuple[str, int]]
    per_day: list[tuple[date, int]]
    active_users: list[ActiveUser]
    freshness: Freshness
    days: int


def dashboard_overview(*, days: int = 30, top: int = 10, now: datetime | None = None) -> Overview:
    """Totals, memories per sector and per day, the most active users over `days` and the
    freshness of summaries: seven aggregate queries, each served by an index where the
    database has one (COUNT(*) rather than COUNT(id), so no table row has to be read)."""
    now = now or clock.now()
    today = now.astimezone(UTC).date()
    first_day = today - timedelta(days=days - 1)
    starts = [
        datetime.combine(first_day + timedelta(days=i), datetime.min.time(), tzinfo=UTC)
        for i in range(days + 1)
    ]

    by_sector = {name: 0 for name in SECTOR_NAMES}
    by_sector.update(
        Memory.objects.order_by()
        .values("primary_sector")
        .annotate(n=Count("*"))
        .values_list("primary_sector", "n")
    )
    shared = Memory.objects.filter(user_id__isnull=True).count()
    users = Memory.objects.filter(user_id__isnull=False).order_by().values("user_id").distinct()

    recent = Memory.objects.filter(created_at__gte=starts[0]).order_by()
    # One conditional count per day rather than GROUP BY a date function: SQLite evaluates
    # Django's date truncation in Python, row by row.
    per_day_counts = recent.aggregate(
        **{
            f"d{i}": Count(
                "created_at", filter=Q(created_at__gte=starts[i], created_at__lt=starts[i + 1])
            )
            for i in range(days)
        }
    )
    per_day = [(first_day + timedelta(days=i), per_day_counts[f"d{i}"]) for i in range(days)]

    active = (
        recent.filter(user_id__isnull=False)
        .values("user_id")
        .annotate(added=Count("*"), last=Max("created_at"))
        .order_by("-added", "user_id")[:top]
    )

    return Overview(
        memories=sum(by_sector.values()),
        users=users.count(),
        tags=Tag.objects.count(),
        shared_pool=shared,
        per_sector=sorted(by_sector.items(), key=lambda item: (-item[1], item[0])),
        per_day=per_day,
        active_users=[ActiveUser(r["user_id"], r["added"], r["last"]) for r in active],
        freshness=summary_freshness(),
        days=days,
    )


def summary_freshness() -> Freshness:
    counts = UserSummary.objects.aggregate(
        fresh=Count("pk", filter=Q(stale=False)),
        stale=Count("pk", filter=Q(stale=True)),
        invalidated=Count("pk", filter=Q(invalidated=True)),
        queued=Count("pk", filter=Q(queued_at__isnull=False)),
        never_generated=Count("pk", filter=Q(reflection_count=0)),
    )
    return Freshness(**counts)


@dataclass(frozen=True)
class UserOverview:
    user_id: str
    summary: UserSummary | None
    memories: int
    per_sector: list[tuple[str, int]]
    recent: list[Memory]

    @property
    def exists(self) -> bool:
        return self.memories > 0 or self.summary is not None


def user_overview(*, user_id: str, recent: int = 20) -> UserOverview:
    """One user's stored summary (as stored: a page view never regenerates it), their
    memory count per sector and their latest memories."""
    summary = UserSummary.objects.filter(user_id=user_id).first()
    by_sector = dict(
        Memory.objects.for_user(user_id)
        .order_by()
        .values("primary_sector")
        .annotate(n=Count("*"))
        .values_list("primary_sector", "n")
    )
    return UserOverview(
        user_id=user_id,
        summary=summary,
        memories=sum(by_sector.values()),
        per_sector=sorted(by_sector.items(), key=lambda item: (-item[1], item[0])),
        recent=memory_list(user_id=user_id, limit=recent) if by_sector else [],
    )


def user_search(*, user_id: str, query: str, k: int) -> list[Match]:
    """The search /memory/query runs, scoped to one user."""
    return memory_query(query=query, k=k, user_id=user_id)
