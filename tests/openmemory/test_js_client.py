"""The published `openmemory-js` client (tests/js/drive.mjs) against a live server."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection

from tests.live import missing_service

JS_DIR = Path(__file__).resolve().parents[1] / "js"
ROOT = JS_DIR.parents[1]
API_KEY = "js-test-key"
ALICE = "user_123"
BOB = "bob@example.com"

pytestmark = pytest.mark.live


@pytest.fixture(scope="session")
def node() -> str:
    """The node binary, with tests/js's locked dependencies installed."""
    node_bin, npm_bin = shutil.which("node"), shutil.which("npm")
    if node_bin is None or npm_bin is None:
        missing_service(
            f"node not installed: {'node' if node_bin is None else 'npm'} is not on PATH"
        )
    if not (JS_DIR / "node_modules" / "openmemory-js").is_dir():
        result = subprocess.run(
            [npm_bin, "ci", "--no-audit", "--no-fund"],
            cwd=JS_DIR,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, f"npm ci failed:\n{result.stdout}\n{result.stderr}"
    return node_bin


@pytest.fixture
def drive(node, live_server, transactional_db, settings):
    """Runs drive.mjs against a fresh live server requiring API_KEY; returns its JSON."""
    settings.OM_API_KEYS = [API_KEY]
    settings.OM_USER_SUMMARY_INTERVAL = 30
    # Scores from the memory alone, so that test_update_bumps_version_and_re_embeds can tell
    # the new vector from the old one.
    settings.OM_CONTEXT_WEIGHT = 0.0
    # The live server listens on IPv4; Node may resolve "localhost" to ::1 first.
    base_url = live_server.url.replace("://localhost:", "://127.0.0.1:")

    def _drive() -> dict:
        result = subprocess.run(
            [node, str(JS_DIR / "drive.mjs"), base_url, API_KEY],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    return _drive


@pytest.fixture
def js(drive) -> dict:
    started = int(time.time() * 1000)
    out = drive()
    out["_window"] = (started - 1000, int(time.time() * 1000) + 1000)
    return out


def ids(items: list[dict]) -> list[str]:
    return [item["id"] for item in items]


def test_the_class_is_the_named_export_in_node(js):
    # In Node's ES modules the default import of this CommonJS build is the exports object.
    assert js["esm_default_import"] == "object"


def test_health_and_sectors(js):
    assert js["health"]["ok"] is True
    assert js["health"]["database"] == connection.vendor
    assert js["sectors"]["sectors"] == [
        "episodic",
        "semantic",
        "procedural",
        "emotional",
        "reflective",
    ]
    assert js["sectors"]["configs"]["episodic"]["decay_lambda"] == 0.015


def test_add_with_tags_and_user_id(js):
    for name in ("course", "dark_mode", "bob_light_mode", "bob_rust"):
        assert uuid.UUID(js[name]["id"])
        assert "deduplicated" not in js[name]
    assert js["course"]["primary_sector"] == "episodic"
    assert js["dark_mode"]["primary_sector"] == "semantic"
    assert js["duplicate"] == {**js["course"], "deduplicated": True}


def test_query_with_user_filter_isolates_users(js):
    alice, bob = js["alice_query"], js["bob_query"]

    assert alice["query"] == "user preferences"
    assert set(ids(alice["matches"])) == {js["course"]["id"], js["dark_mode"]["id"]}
    assert set(ids(bob["matches"])) == {js["bob_light_mode"]["id"], js["bob_rust"]["id"]}
    assert alice["matches"][0]["content"] == "User prefers dark mode in applications"
    assert bob["matches"][0]["content"] == "User prefers light mode in applications"
    for match in alice["matches"] + bob["matches"]:
        assert 0.0 <= match["score"] <= 1.0
    assert {m["user_id"] for m in alice["matches"]} == {ALICE}
    assert {m["user_id"] for m in bob["matches"]} == {BOB}
    assert alice["matches"][0]["tags"] == ["preferences", "ui"]


def test_get_user_memories_pages(js):
    pages = [js["alice_page_1"], js["alice_page_2"], js["alice_page_3"]]

    assert [page["user_id"] for page in pages] == [ALICE] * 3
    assert [ids(page["items"]) for page in pages] == [
        [js["dark_mode"]["id"]],
        [js["course"]["id"]],
        [],
    ]
    assert js["alice_page_2"]["items"][0]["tags"] == ["achievement", "learning"]
    assert js["bob_memories"]["user_id"] == BOB
    assert ids(js["bob_memories"]["items"]) == [js["bob_rust"]["id"], js["bob_light_mode"]["id"]]


def test_user_summaries(js):
    summary, regenerated = js["alice_summary"], js["alice_regenerated"]
    low, high = js["_window"]

    assert set(summary) == {"user_id", "summary", "reflection_count", "updated_at"}
    assert summary["user_id"] == ALICE
    # Built at the user's first memory; the second is below OM_USER_SUMMARY_INTERVAL.
    assert summary["summary"] == "The user completed Python course."
    assert summary["reflection_count"] >= 1
    assert isinstance(summary["updated_at"], int)
    assert low <= summary["updated_at"] <= high

    assert regenerated["ok"] is True
    assert regenerated["user_id"] == ALICE
    assert regenerated["reflection_count"] == summary["reflection_count"] + 1
    # Equal salience: most recently seen first, and the duplicate add saw the course again.
    assert regenerated["summary"] == (
        "The user completed Python course. The user prefers dark mode in applications."
    )
    assert summary["updated_at"] <= regenerated["updated_at"] <= high

    assert js["bob_summary"]["user_id"] == BOB
    assert "The user prefers light mode in applications." in js["bob_summary"]["summary"]
    assert "dark mode" not in js["bob_summary"]["summary"]


def test_update_bumps_version_and_re_embeds(js):
    updated = js["updated"]

    assert updated["ok"] is True and updated["updated"] is True
    assert updated["id"] == js["dark_mode"]["id"]
    assert updated["version"] == 2
    assert updated["content"] == "User switched to light mode in the evening"
    assert updated["tags"] == ["evening", "ui"]
    [match] = js["query_after_update"]["matches"]
    assert match["id"] == js["dark_mode"]["id"]
    # The exact new text: hybrid score 0.975 (the best vector and the best word match, just
    # seen, salience 0.5); with the old text's vector left in place the vector part would be
    # at most 0.5 / 0.6 and the score at most 0.9.
    assert match["score"] > 0.95


def test_reinforce(js):
    assert js["reinforced"] == {"ok": True, "id": js["course"]["id"], "salience": 0.8}


def test_delete(js):
    assert js["deleted"] == {"ok": True, "id": js["bob_rust"]["id"]}
    assert ids(js["bob_after_delete"]["items"]) == [js["bob_light_mode"]["id"]]
    assert js["bob_rust"]["id"] not in ids(js["all"]["items"])


def test_get_all_with_limit_offset_and_sector(js):
    newest_first = [js["bob_light_mode"]["id"], js["dark_mode"]["id"], js["course"]["id"]]

    assert ids(js["all"]["items"]) == newest_first
    assert ids(js["all_page"]["items"]) == newest_first[1:2]
    assert ids(js["all_semantic"]["items"]) == newest_first[:2]
    assert ids(js["all_episodic"]["items"]) == [js["course"]["id"]]
    assert {item["version"] for item in js["all"]["items"]} == {1, 2}


def test_errors_reach_the_client_with_their_status(js):
    errors = js["errors"]

    assert errors["unknown_user_summary"] == {
        "ok": False,
        "message": "OpenMemory API error: 404 Not Found",
    }
    assert errors["deleted_memory_update"]["message"] == "OpenMemory API error: 404 Not Found"
    assert errors["empty_content"]["message"] == "OpenMemory API error: 400 Bad Request"
    assert errors["without_key"]["message"] == "OpenMemory API error: 401 Unauthorized"
    assert errors["wrong_key"]["message"] == "OpenMemory API error: 403 Forbidden"
    assert errors["health_without_key"]["ok"] is True
