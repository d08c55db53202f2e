"""Staff dashboard views: thin wrappers that call dashboard.selectors and render templates."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import urlencode

from core.validation import is_user_id
from dashboard import charts, selectors
from memories.models import Memory
from users.models import UserSummary

DEFAULT_K = 10
# A search box, not an API: long enough for any real question, short enough to embed fast.
MAX_QUERY_CHARS = 1000


def staff_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Staff who may view memories and user summaries in the admin (the view or change
    permission): every dashboard page shows both, and is_staff alone must not reveal every
    user's memories."""

    @wraps(view)
    def checked(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        for model in (Memory, UserSummary):
            if not admin.site.get_model_admin(model).has_view_permission(request):
                raise PermissionDenied
        return view(request, *args, **kwargs)

    return staff_member_required(checked)


def _context(request: HttpRequest, **extra) -> dict:
    # The admin's own context: its header, user tools and theme, so the dashboard looks like
    # the rest of the staff pages.
    return {**admin.site.each_context(request), "is_nav_sidebar_enabled": False, **extra}


@staff_page
def home(request: HttpRequest) -> HttpResponse:
    overview = selectors.dashboard_overview()
    context = _context(
        request,
        title="Dashboard",
        overview=overview,
        sectors=charts.share_bars(overview.per_sector),
        chart=charts.daily_bar_chart(overview.per_day),
        active=charts.share_bars([(u.user_id, u.added) for u in overview.active_users]),
    )
    return TemplateResponse(request, "dashboard/home.html", context)


@staff_page
def user_lookup(request: HttpRequest) -> HttpResponse:
    user_id = request.GET.get("user_id", "").strip()
    if not is_user_id(user_id):
        return redirect("dashboard:home")
    return redirect("dashboard:user", user_id=user_id)


@staff_page
def user_detail(request: HttpRequest, user_id: str) -> HttpResponse:
    if not is_user_id(user_id):
        return _missing(request, user_id)
    overview = selectors.user_overview(user_id=user_id)
    if not overview.exists:
        return _missing(request, user_id)
    query = request.GET.get("q", "").strip()[:MAX_QUERY_CHARS]
    k = _bounded_int(request.GET.get("k"), DEFAULT_K, 1, settings.OM_MAX_K)
    matches = selectors.user_search(user_id=user_id, query=query, k=k) if query else None
    context = _context(
        request,
        title=f"User {user_id}",
        summary_admin_url=_summary_admin_url(overview),
        profile=overview,
        sectors=charts.share_bars(overview.per_sector),
        query=query,
        k=k,
        matches=matches,
        admin_memories_url=reverse("admin:memories_memory_changelist")
        + "?"
        + urlencode({"user_id": user_id}),
    )
    return TemplateResponse(request, "dashboard/user.html", context)


def _summary_admin_url(overview: selectors.UserOverview) -> str | None:
    if overview.summary is None:
        return None
    changelist = reverse("admin:users_usersummary_changelist")
    return f"{changelist}?{urlencode({'q': overview.user_id})}"


def _missing(request: HttpRequest, user_id: str) -> HttpResponse:
    context = _context(request, title="Unknown user", user_id=user_id)
    return TemplateResponse(request, "dashboard/user_missing.html", context, status=404)


def _bounded_int(raw: str | None, default: int, low: int, high: int) -> int:
    try:
        return min(high, max(low, int(raw))) if raw else default
    except ValueError:
        return default
