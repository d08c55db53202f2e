"""A real headless chromium (Playwright) drives the admin and the dashboard; saves screenshots."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings

from core import clock
from memories.models import Memory
from memories.services import MemoryInput, memory_create_batch
from tests.live import missing_service
from users.models import UserSummary

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(settings.BASE_DIR) / "data" / "screenshots"
PASSWORD = "operator-pass-123"

FACTS = {
    "user_123": [
        ("User prefers dark mode in applications", ["preferences", "ui"]),
        ("User completed Python course", ["learning", "achievement"]),
        ("Completed React tutorial", ["learning"]),
        ("Prefers TypeScript over JavaScript", ["preferences"]),
        ("Feels nervous before job interviews", ["feelings"]),
        ("To deploy, run make release and then tag the commit", ["howto", "work"]),
        ("Went to the Lisbon JavaScript meetup yesterday", ["events"]),
    ],
    "alice@example.com": [
        ("Alice likes spicy Thai curry for dinner", ["food", "preferences"]),
        ("Alice is learning Rust in the evenings", ["learning"]),
        ("Alice moved to Berlin last month", ["facts"]),
        ("Alice feels happy when gardening", ["feelings"]),
    ],
    "bob": [
        ("Bob uses Neovim with the gruvbox theme", ["preferences", "ui"]),
        ("Bob finished a marathon in October", ["achievement"]),
        ("Bob is allergic to peanuts", ["health", "facts"]),
    ],
    "carol-42": [
        ("Carol reads science fiction on the train", ["preferences", "books"]),
        ("Carol attended the design systems workshop", ["events", "learning"]),
    ],
}


def _browser_or_skip():
    problem = None
    if not Path(CHROMIUM).exists():
        problem = f"chromium is not installed at {CHROMIUM} (run .ci/install-browser)"
    else:
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            problem = "the playwright package is missing (pip install playwright); needs chromium"
    if problem:
        missing_service(problem)
    return sync_playwright


HOBBIES = ["climbing", "jazz piano", "sourdough baking", "chess", "trail running", "birdwatching"]
CITIES = ["Lisbon", "Osaka", "Toronto", "Nairobi", "Edinburgh", "Bogota", "Seoul", "Austin"]


def _seed() -> None:
    items = [
        MemoryInput(content=content, user_id=user_id, tags=tags)
        for user_id, facts in FACTS.items()
        for content, tags in facts
    ]
    # A crowd of other users, so the lists page and the chart look like a real server.
    for i in range(36):
        user_id = f"user-{i % 12:03d}"
        hobby, city = HOBBIES[(i + i // 12) % 6], CITIES[(i + i // 12) % 8]
        items.append(
            MemoryInput(
                content=f"Enjoys {hobby} on weekends", user_id=user_id, tags=["preferences"]
            )
        )
        items.append(
            MemoryInput(
                content=f"Visited {city} in spring for work",
                user_id=user_id,
                tags=["events", "travel"],
            )
        )
    items.append(MemoryInput(content="The product supports SSO via SAML", tags=["product"]))
    memory_create_batch(items=items)
    now = clock.now()
    ids = list(Memory.objects.order_by("content", "user_id").values_list("pk", flat=True))
    for i, pk in enumerate(ids):
        # A deterministic spread over four weeks, busier lately, as a growing server's.
        days = int(29 * ((i * 0.618) % 1) ** 1.5)
        Memory.objects.filter(pk=pk).update(created_at=now - timedelta(days=days, hours=i % 9))


@pytest.mark.live
def test_operator_walks_through_admin_and_dashboard(
    live_server, transactional_db, django_user_model
):
    sync_playwright = _browser_or_skip()
    django_user_model.objects.create_user(
        username="operator", password=PASSWORD, is_staff=True, is_superuser=True
    )
    _seed()
    # Every database read happens outside the Playwright block: code in it runs in another
    # greenlet, whose context would open (and leak) a connection of its own.
    before = UserSummary.objects.get(user_id="user_123").reflection_count
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    base = live_server.url

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 900})
            page.set_default_timeout(15_000)

            # Login, landing on the memory list.
            page.goto(f"{base}/admin/login/?next=/admin/memories/memory/")
            page.fill("#id_username", "operator")
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            page.wait_for_selector("#result_list")
            assert "Select memory to change" in page.title()
            assert page.locator("#result_list tbody tr").count() == 50
            assert "89 memories" in page.inner_text(".paginator")
            # The first screen only: the full list is a very long image.
            page.screenshot(path=str(SCREENSHOTS / "admin-memory-list.png"))

            # Search by content.
            page.fill("#searchbar", "dark mode")
            page.press("#searchbar", "Enter")
            page.wait_for_url("**/admin/memories/memory/?q=dark+mode")
            rows = page.locator("#result_list tbody tr")
            assert rows.count() == 1
            for text in rows.all_inner_texts():
                assert "dark mode" in text and "user_123" in text
            page.screenshot(path=str(SCREENSHOTS / "admin-memory-search.png"), full_page=True)

            # The dashboard home, then a user page through "most active users".
            page.goto(f"{base}/dashboard/")
            assert page.inner_text('[data-total="memories"]') == "89"
            assert page.inner_text('[data-total="users"]') == "16"
            assert page.locator("svg.om-chart rect.om-bar").count() == 30
            page.screenshot(path=str(SCREENSHOTS / "dashboard-home.png"), full_page=True)

            page.click("text=user_123")
            page.wait_for_url("**/dashboard/users/user_123/")
            assert "dark mode" in page.inner_text(".om-summary")
            page.fill("input[name=q]", "prefers TypeScript")
            page.click(".om-search input[type=submit]")
            page.wait_for_selector(".om-results")
            first = page.locator(".om-results tbody tr").first.inner_text()
            assert "TypeScript" in first, first
            assert "alice" not in page.inner_text(".om-results").lower()
            page.screenshot(path=str(SCREENSHOTS / "dashboard-user-search.png"), full_page=True)

            # Regenerate one summary from the admin action.
            page.goto(f"{base}/admin/users/usersummary/")
            row = page.locator("#result_list tbody tr", has_text="user_123")
            row.locator("input[name=_selected_action]").check()
            page.select_option("select[name=action]", "regenerate_summaries")
            page.click("button[name=index]")
            page.wait_for_selector(".messagelist .success")
            assert page.inner_text(".messagelist .success") == "Regenerated 1 summary."
            page.screenshot(path=str(SCREENSHOTS / "admin-summary-regenerate.png"))
        finally:
            browser.close()

    assert UserSummary.objects.get(user_id="user_123").reflection_count == before + 1
    for name in ("admin-memory-list", "dashboard-home"):
        assert (SCREENSHOTS / f"{name}.png").stat().st_size > 10_000
