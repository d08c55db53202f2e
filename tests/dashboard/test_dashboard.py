"""The staff dashboard: access, totals, the per-day chart and the per-user page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db.models import Count

from core import clock
from dashboard.charts import daily_bar_chart
from dashboard.selectors import dashboard_overview
from memories.models import Memory
from users.services import user_summary_regenerate


@pytest.mark.parametrize("path", ["/dashboard/", "/dashboard/users/user_0/"])
def test_anonymous_visitors_are_sent_to_the_admin_login(client, db, path):
    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=/dashboard/")


def test_non_staff_users_are_sent_to_the_admin_login(client, django_user_model):
    user = django_user_model.objects.create_user(username="plain", password="plain-pass-123")
    client.force_login(user)

    assert client.get("/dashboard/")["Location"].startswith("/admin/login/")


PAGES = ["/dashboard/", "/dashboard/users/user_0/", "/dashboard/users/?user_id=user_0"]


@pytest.mark.parametrize("path", PAGES)
@pytest.mark.parametrize("perms", [(), ("memories.view_memory",), ("users.view_usersummary",)])
def test_staff_who_may_not_view_memories_and_summaries_are_refused(
    staff_with, make_memories, path, perms
):
    make_memories(5)

    response = staff_with(*perms).get(path)

    assert response.status_code == 403
    assert b"note 0" not in response.content


@pytest.mark.parametrize(
    "perms",
    [
        ("memories.view_memory", "users.view_usersummary"),
        # As in the admin, the change permission includes viewing.
        ("memories.change_memory", "users.change_usersummary"),
    ],
)
def test_staff_who_may_view_memories_and_summaries_see_the_pages(staff_with, make_memories, perms):
    make_memories(5)
    client = staff_with(*perms)

    home = client.get("/dashboard/")
    user = client.get("/dashboard/users/user_0/")

    assert home.status_code == 200
    assert user.status_code == 200
    assert "User prefers dark mode in every editor (note 0)" in user.content.decode()


def _total(page: str, name: str) -> int:
    return int(re.search(rf'data-total="{name}">(\d+)<', page).group(1))


def test_home_shows_totals_sectors_activity_and_freshness(staff_client, make_memories):
    memories = make_memories(20, users=4)
    # Five of them were added 40 days ago: counted in the totals, not in the 30-day views.
    old = [m.pk for m in memories[:5]]
    Memory.objects.filter(pk__in=old).update(created_at=clock.now() - timedelta(days=40))
    user_summary_regenerate(user_id="user_0")

    response = staff_client.get("/dashboard/")

    page = response.content.decode()
    assert response.status_code == 200
    assert _total(page, "memories") == 20
    assert _total(page, "users") == 4
    assert _total(page, "tags") == 10
    assert (_total(page, "fresh"), _total(page, "stale")) == (1, 3)
    overview = response.context["overview"]
    assert overview.per_day[-1][1] == 15 and sum(n for _, n in overview.per_day) == 15
    assert len(overview.per_day) == 30
    stored = Memory.objects.order_by().values_list("primary_sector").annotate(n=Count("pk"))
    assert {k: v for k, v in overview.per_sector if v} == dict(stored)
    active = [(u.user_id, u.added) for u in overview.active_users]
    assert active == [("user_1", 4), ("user_2", 4), ("user_3", 4), ("user_0", 3)]
    assert '<a href="/dashboard/users/user_1/">user_1</a>' in page
    assert "<svg" in page and page.count('class="om-bar"') == 30
    assert all(f'<th scope="row">{name}</th>' in page for name, _ in overview.per_sector)


def test_memories_per_day_puts_each_memory_on_its_utc_day(db, make_memories):
    memories = make_memories(3, users=1)
    now = clock.now()
    Memory.objects.filter(pk=memories[0].pk).update(created_at=now - timedelta(days=2))

    overview = dashboard_overview(now=now)

    assert [n for _, n in overview.per_day[-3:]] == [1, 0, 2]
    assert overview.active_users[0].user_id == "user_0" and overview.active_users[0].added == 3


def test_shared_pool_memories_are_counted_but_not_as_users(staff_client, db):
    from memories.services import memory_create

    memory_create(content="Shared fact about the product")

    overview = staff_client.get("/dashboard/").context["overview"]

    assert (overview.memories, overview.users, overview.shared_pool) == (1, 0, 1)


def test_empty_dashboard_renders(staff_client):
    response = staff_client.get("/dashboard/")

    assert response.status_code == 200
    assert _total(response.content.decode(), "memories") == 0


def test_chart_scales_to_a_round_ceiling():
    from datetime import date

    chart = daily_bar_chart([(date(2025, 1, 1), 3), (date(2025, 1, 2), 7)])

    assert [t.value for t in chart.ticks] == [0, 5, 10]
    assert [t.value for t in daily_bar_chart([(date(2025, 1, 1), 5)]).ticks] == [0, 2.5, 5]
    tallest = max(chart.bars, key=lambda bar: bar.height)
    assert tallest.value == 7 and tallest.y > chart.ticks[-1].y


def test_user_page_shows_summary_and_recent_memories(staff_client, make_memories):
    make_memories(10, users=2)
    user_summary_regenerate(user_id="user_1")

    response = staff_client.get("/dashboard/users/user_1/")

    page = response.content.decode()
    assert response.status_code == 200
    assert _total(page, "memories") == 5
    assert "The user" in page and "completed the Python course" in page
    assert "note 9" in page and "note 8" not in page  # user_0's memory: never shown here
    assert "/admin/memories/memory/?user_id=user_1" in page
    assert all(f'<th scope="row">{row[0]}</th>' in page for row in response.context["sectors"])


def test_user_page_search_runs_the_api_query_for_that_user_only(staff_client, make_memories):
    make_memories(10, users=2)

    response = staff_client.get("/dashboard/users/user_1/", {"q": "Python course", "k": "3"})

    matches = response.context["matches"]
    assert len(matches) == 3
    assert {m.memory.user_id for m in matches} == {"user_1"}
    assert "Python course" in matches[0].memory.content
    assert matches[0].score >= matches[1].score >= matches[2].score
    assert f"{matches[0].score:.3f}" in response.content.decode()


def test_user_page_search_with_no_matches_says_so(staff_client, make_memories, settings):
    make_memories(2, users=1)

    response = staff_client.get("/dashboard/users/user_0/", {"q": "   "})

    assert response.context["matches"] is None


def test_unknown_and_malformed_users_are_404(staff_client, make_memories):
    make_memories(1)

    assert staff_client.get("/dashboard/users/nobody/").status_code == 404
    assert staff_client.get("/dashboard/users/..bad/").status_code == 404


def test_user_lookup_redirects_to_the_user_page(staff_client, db):
    response = staff_client.get("/dashboard/users/", {"user_id": " alice@example.com "})

    assert response["Location"] == "/dashboard/users/alice@example.com/"
    assert staff_client.get("/dashboard/users/", {"user_id": "a b"})["Location"] == "/dashboard/"
