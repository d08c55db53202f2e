"""The `OpenMemory` Python client against a live server: every method, errors and API keys."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from django.db import connection

from observability.views import VERSION
from openmemory import OpenMemory, OpenMemoryError

ROOT = Path(__file__).resolve().parents[2]
SECTOR_NAMES = ["episodic", "semantic", "procedural", "emotional", "reflective"]
MISSING = "00000000-0000-4000-8000-000000000000"  # a well-formed id that no memory has


@pytest.fixture
def server_url(live_server, transactional_db) -> str:
    """A live server whose requests see (and write) the test database."""
    return live_server.url


@pytest.fixture
def om(server_url) -> OpenMemory:
    return OpenMemory(base_url=server_url, timeout=30)


def now_ms() -> int:
    return int(time.time() * 1000)


def user_contents(om: OpenMemory, user_id: str, **page) -> list[str]:
    return [item["content"] for item in om.get_user_memories(user_id, **page)["items"]]


def raises_api_error(call, *args, **kwargs) -> OpenMemoryError:
    with pytest.raises(OpenMemoryError) as info:
        call(*args, **kwargs)
    return info.value


# --- memories ---------------------------------------------------------------------------------


@pytest.mark.live
class TestMemories:
    def test_add_stores_content_tags_metadata_and_user(self, om):
        before = now_ms()
        created = om.add(
            "User prefers dark mode in applications",
            tags=["ui", "preferences"],
            metadata={"source": "settings-page"},
            user_id="user_123",
        )

        assert uuid.UUID(created["id"])
        assert created["primary_sector"] == "semantic"
        assert created["sectors"][0] == "semantic"
        assert "deduplicated" not in created

        memory = om.get(created["id"])
        assert memory["id"] == created["id"]
        assert memory["content"] == "User prefers dark mode in applications"
        assert memory["tags"] == ["preferences", "ui"]
        assert memory["metadata"] == {"source": "settings-page"}
        assert memory["user_id"] == "user_123"
        assert memory["version"] == 1
        assert memory["salience"] == 0.5
        assert memory["decay_lambda"] == 0.005
        assert before - 1000 <= memory["created_at"] <= now_ms() + 1000
        assert memory["updated_at"] == memory["created_at"] == memory["last_seen_at"]

    def test_adding_the_same_content_again_returns_the_same_memory(self, om):
        first = om.add("User completed Python course", tags=["learning"], user_id="user_123")
        again = om.add("  user completed   PYTHON course ", user_id="user_123")
        other_user = om.add("User completed Python course", user_id="user_456")

        assert again == {**first, "deduplicated": True}
        assert other_user["id"] != first["id"]
        assert "deduplicated" not in other_user
        assert user_contents(om, "user_123") == ["User completed Python course"]

    def test_add_batch_stores_items_in_order_and_deduplicates(self, om):
        existing = om.add("User lives in Lisbon", user_id="alice")

        batch = om.add_batch(
            [
                {"content": "User likes green tea", "tags": ["drinks"], "user_id": "alice"},
                {"content": "User lives in Lisbon", "user_id": "alice"},
                {"content": "User likes green tea", "user_id": "bob"},
                {"content": "The office closes at 6pm on Fridays"},
                {"content": "user likes GREEN tea", "user_id": "alice"},
            ]
        )

        assert len(batch["ids"]) == 5
        assert [item["id"] for item in batch["items"]] == batch["ids"]
        assert batch["ids"][1] == existing["id"]
        assert batch["items"][1]["deduplicated"] is True
        assert batch["ids"][4] == batch["ids"][0]
        assert batch["items"][4]["deduplicated"] is True
        assert "deduplicated" not in batch["items"][0]
        assert len(set(batch["ids"])) == 4
        assert om.get(batch["ids"][0])["tags"] == ["drinks"]
        assert om.get(batch["ids"][2])["user_id"] == "bob"
        assert om.get(batch["ids"][3])["user_id"] is None
        assert sorted(user_contents(om, "alice")) == [
            "User likes green tea",
            "User lives in Lisbon",
        ]

    def test_query_with_user_filter_sees_only_that_users_memories(self, om):
        alice_ids = {
            om.add("User prefers dark mode in applications", user_id="alice")["id"],
            om.add("User prefers vim keybindings in every editor", user_id="alice")["id"],
        }
        bob_ids = {
            om.add("User prefers light mode in applications", user_id="bob")["id"],
            om.add("User prefers emacs keybindings", user_id="bob")["id"],
        }

        alice = om.query("preferred editor keybindings", k=10, filters={"user_id": "alice"})
        bob = om.query("preferred editor keybindings", k=10, filters={"user_id": "bob"})
        everyone = om.query("preferred editor keybindings", k=10)

        assert alice["query"] == "preferred editor keybindings"
        assert {m["id"] for m in alice["matches"]} == alice_ids
        assert {m["id"] for m in bob["matches"]} == bob_ids
        assert {m["id"] for m in everyone["matches"]} == alice_ids | bob_ids
        assert alice["matches"][0]["content"] == "User prefers vim keybindings in every editor"
        assert bob["matches"][0]["content"] == "User prefers emacs keybindings"
        for match in alice["matches"] + bob["matches"]:
            assert 0.0 <= match["score"] <= 1.0
        scores = [m["score"] for m in alice["matches"]]
        assert scores == sorted(scores, reverse=True)
        assert scores[0] > scores[-1]

    def test_query_k_limits_the_number_of_matches(self, om):
        for n in range(5):
            om.add(f"User visited museum number {n}", user_id="alice")

        result = om.query("museum visit", k=3, filters={"user_id": "alice"})

        assert len(result["matches"]) == 3

    def test_get_returns_the_full_memory(self, om):
        created = om.add("User is allergic to peanuts", tags=["health"], user_id="alice")

        memory = om.get(created["id"])

        assert set(memory) >= {
            "id",
            "content",
            "tags",
            "metadata",
            "created_at",
            "updated_at",
            "last_seen_at",
            "salience",
            "decay_lambda",
            "primary_sector",
            "sectors",
            "version",
            "user_id",
        }
        assert memory["content"] == "User is allergic to peanuts"
        assert memory["primary_sector"] == created["primary_sector"]

    @pytest.mark.usefixtures("vector_ranking")
    def test_update_bumps_the_version_and_re_embeds_the_content(self, om):
        target = om.add("User prefers dark mode in applications", user_id="alice")["id"]
        om.add("User drinks espresso every morning", user_id="alice")

        updated = om.update(target, content="User switched to solarized light theme")

        assert updated["ok"] is True and updated["updated"] is True
        assert updated["id"] == target
        assert updated["version"] == 2
        assert updated["content"] == "User switched to solarized light theme"
        assert updated["updated_at"] >= updated["created_at"]

        found = om.query("switched to solarized light theme", k=2, filters={"user_id": "alice"})
        assert found["matches"][0]["id"] == target
        assert found["matches"][0]["content"] == "User switched to solarized light theme"
        assert found["matches"][0]["score"] > 0.99
        stale = om.query("dark mode in applications", k=2, filters={"user_id": "alice"})
        assert all(m["score"] < 0.5 for m in stale["matches"])

    def test_update_replaces_tags_and_metadata(self, om):
        target = om.add("User plays chess", tags=["hobby"], user_id="alice")["id"]

        updated = om.update(target, tags=["games", "hobby", "board"], metadata={"level": 3})

        assert updated["version"] == 2
        assert updated["content"] == "User plays chess"
        assert om.get(target)["tags"] == ["board", "games", "hobby"]
        assert om.get(target)["metadata"] == {"level": 3}
        assert om.update(target, metadata={"level": 4})["version"] == 3

    def test_delete_removes_the_memory(self, om):
        keep = om.add("User speaks Portuguese", user_id="alice")["id"]
        gone = om.add("User speaks Klingon", user_id="alice")["id"]

        assert om.delete(gone) == {"ok": True, "id": gone}

        assert raises_api_error(om.get, gone).status == 404
        assert [m["id"] for m in om.all()["items"]] == [keep]
        matches = om.query("speaks Klingon", filters={"user_id": "alice"})["matches"]
        assert [m["id"] for m in matches] == [keep]

    def test_all_lists_newest_first_with_limit_offset_sector_and_user(self, om):
        ids = [
            om.add("User prefers tea over coffee", user_id="alice")["id"],
            om.add("User went hiking yesterday", user_id="alice")["id"],
            om.add("User likes jazz", user_id="bob")["id"],
            om.add("User went to a concert last week", user_id="bob")["id"],
        ]
        newest_first = ids[::-1]

        assert [m["id"] for m in om.all()["items"]] == newest_first
        assert [m["id"] for m in om.all(limit=2)["items"]] == newest_first[:2]
        assert [m["id"] for m in om.all(limit=2, offset=2)["items"]] == newest_first[2:]
        assert om.all(limit=2, offset=4)["items"] == []
        episodic = om.all(sector="episodic")["items"]
        assert [m["id"] for m in episodic] == [ids[3], ids[1]]
        assert {m["primary_sector"] for m in episodic} == {"episodic"}
        assert [m["id"] for m in om.all(user_id="bob")["items"]] == [ids[3], ids[2]]
        bob_semantic = om.all(user_id="bob", sector="semantic")["items"]
        assert [m["id"] for m in bob_semantic] == [ids[2]]

    def test_reinforce_raises_salience_up_to_one(self, om):
        memory_id = om.add("User prefers aisle seats", user_id="alice")["id"]

        first = om.reinforce(memory_id, boost=0.25)
        second = om.reinforce(memory_id, boost=0.5)

        assert first == {"ok": True, "id": memory_id, "salience": 0.75}
        assert second == {"ok": True, "id": memory_id, "salience": 1.0}
        assert om.get(memory_id)["salience"] == 1.0

    def test_reinforce_default_boost_comes_from_settings(self, om, settings):
        memory_id = om.add("User prefers window seats", user_id="alice")["id"]

        result = om.reinforce(memory_id)

        expected = min(1.0, 0.5 + settings.OM_REINFORCE_BOOST)
        assert result["salience"] == pytest.approx(expected)


# --- users ------------------------------------------------------------------------------------


@pytest.mark.live
class TestUsers:
    def test_get_user_memories_pages_through_newest_first(self, om):
        contents = [f"User read chapter {n} of the Django book" for n in range(1, 6)]
        for content in contents:
            om.add(content, user_id="reader")
        om.add("User read a different book", user_id="someone-else")

        pages = [om.get_user_memories("reader", limit=2, offset=offset) for offset in (0, 2, 4)]

        assert [page["user_id"] for page in pages] == ["reader"] * 3
        assert [len(page["items"]) for page in pages] == [2, 2, 1]
        listed = [item["content"] for page in pages for item in page["items"]]
        assert listed == contents[::-1]
        assert {item["user_id"] for page in pages for item in page["items"]} == {"reader"}
        assert om.get_user_memories("reader", limit=2, offset=6)["items"] == []
        assert len(om.get_user_memories("reader")["items"]) == 5

    def test_user_ids_with_punctuation_round_trip(self, om):
        user_id = "auth0|alice@example.com"
        om.add("User prefers metric units", user_id=user_id)

        page = om.get_user_memories(user_id)

        assert page["user_id"] == user_id
        assert [item["content"] for item in page["items"]] == ["User prefers metric units"]
        assert om.get_user_summary(user_id)["user_id"] == user_id

    def test_unknown_user_has_no_memories(self, om):
        assert om.get_user_memories("nobody") == {"user_id": "nobody", "items": []}

    def test_get_user_summary_describes_the_users_memories(self, om):
        before = now_ms()
        om.add("User prefers dark mode in applications", user_id="user_123")
        om.add("User completed Python course", user_id="user_123")
        om.add("User prefers light mode", user_id="user_456")

        summary = om.get_user_summary("user_123")

        assert set(summary) == {"user_id", "summary", "reflection_count", "updated_at"}
        assert summary["user_id"] == "user_123"
        assert "The user prefers dark mode in applications." in summary["summary"]
        assert "light mode" not in summary["summary"]
        assert summary["reflection_count"] >= 1
        assert isinstance(summary["updated_at"], int)
        assert before - 1000 <= summary["updated_at"] <= now_ms() + 1000

    def test_regenerate_user_summary_rebuilds_from_current_memories(self, om):
        om.add("User prefers dark mode in applications", user_id="user_123")
        before = om.get_user_summary("user_123")
        om.add("User completed Python course", user_id="user_123")

        result = om.regenerate_user_summary("user_123")

        assert result["ok"] is True
        assert result["user_id"] == "user_123"
        assert result["reflection_count"] == before["reflection_count"] + 1
        assert "The user completed Python course." in result["summary"]
        assert result["updated_at"] >= before["updated_at"]
        assert om.get_user_summary("user_123") == {k: v for k, v in result.items() if k != "ok"}

    def test_delete_user_memories_removes_only_that_users_memories_and_summary(self, om):
        om.add("User prefers dark mode in applications", user_id="alice")
        om.add("User completed Python course", user_id="alice")
        bob = om.add("User completed Python course", user_id="bob")["id"]
        om.get_user_summary("alice")

        result = om.delete_user_memories("alice")

        assert result == {"ok": True, "user_id": "alice", "deleted": 2}
        assert om.get_user_memories("alice")["items"] == []
        assert raises_api_error(om.get_user_summary, "alice").status == 404
        assert [m["id"] for m in om.all()["items"]] == [bob]
        assert om.delete_user_memories("alice")["deleted"] == 0


# --- server -----------------------------------------------------------------------------------


@pytest.mark.live
class TestServer:
    def test_health(self, om, settings):
        assert om.health() == {
            "ok": True,
            "version": VERSION,
            "database": connection.vendor,
            "embeddings": f"synthetic-v2-{settings.OM_VECTOR_DIM}",
            "embeddings_pending": 0,
            "vectors_pending": 0,
            "summaries_queued": 0,
        }

    def test_sectors(self, om):
        result = om.sectors()

        assert result["sectors"] == SECTOR_NAMES
        assert set(result["configs"]) == set(SECTOR_NAMES)
        assert result["configs"]["semantic"] == {
            "description": "Facts & preferences - factual data",
            "decay_lambda": 0.005,
            "weight": 1.0,
        }


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.live
class TestErrors:
    @pytest.mark.parametrize(
        ("call", "status", "err"),
        [
            pytest.param(lambda om: om.add(""), 400, "content required", id="add-empty"),
            pytest.param(lambda om: om.add("   "), 400, "content required", id="add-blank"),
            pytest.param(
                lambda om: om.add("User likes tea", tags=[" "]),
                400,
                "tags must be non-empty strings",
                id="add-blank-tag",
            ),
            pytest.param(
                lambda om: om.add("User likes tea", user_id="a/b"),
                400,
                "user_id required",
                id="add-bad-user-id",
            ),
            pytest.param(lambda om: om.add_batch([]), 400, "items required", id="batch-empty"),
            pytest.param(lambda om: om.query(""), 400, "query required", id="query-empty"),
            pytest.param(lambda om: om.get(MISSING), 404, "memory not found", id="get-unknown"),
            pytest.param(lambda om: om.get("nope"), 404, "memory not found", id="get-not-uuid"),
            pytest.param(
                lambda om: om.update(MISSING, "new text"),
                404,
                "memory not found",
                id="update-unknown",
            ),
            pytest.param(
                lambda om: om.delete(MISSING), 404, "memory not found", id="delete-unknown"
            ),
            pytest.param(
                lambda om: om.reinforce(MISSING), 404, "memory not found", id="reinforce-unknown"
            ),
            pytest.param(
                lambda om: om.reinforce("nope"), 400, "id invalid", id="reinforce-not-uuid"
            ),
            pytest.param(
                lambda om: om.get_user_summary("nobody"),
                404,
                "user not found",
                id="summary-unknown-user",
            ),
            pytest.param(
                lambda om: om.regenerate_user_summary("nobody"),
                404,
                "user not found",
                id="regenerate-unknown-user",
            ),
            pytest.param(
                lambda om: om.get_user_memories("bad user"),
                400,
                "user_id required",
                id="user-memories-bad-user-id",
            ),
        ],
    )
    def test_errors_raise_openmemory_error_with_status_and_err(self, om, call, status, err):
        with pytest.raises(OpenMemoryError) as info:
            call(om)

        assert (info.value.status, info.value.err) == (status, err)
        assert str(info.value) == f"{status}: {err}"

    def test_k_out_of_range(self, om, settings):
        error = raises_api_error(om.query, "tea", k=settings.OM_MAX_K + 1)

        assert error.status == 400
        assert error.err == f"k must be between 1 and {settings.OM_MAX_K}"

    def test_update_without_changes(self, om):
        memory_id = om.add("User likes tea")["id"]

        error = raises_api_error(om.update, memory_id)

        assert error.status == 400
        assert error.err == "nothing to update: send content, tags or metadata"
        assert om.get(memory_id)["version"] == 1

    def test_update_to_content_the_user_already_has(self, om):
        om.add("User likes tea", user_id="alice")
        other = om.add("User likes coffee", user_id="alice")["id"]

        error = raises_api_error(om.update, other, content="user likes TEA")

        assert (error.status, error.err) == (
            409,
            "an identical memory already exists for this user",
        )
        assert om.get(other)["content"] == "User likes coffee"


# --- API keys ---------------------------------------------------------------------------------


@pytest.mark.live
class TestApiKeys:
    @pytest.fixture(autouse=True)
    def _require_key(self, settings):
        settings.OM_API_KEYS = ["k1"]

    def test_without_key_is_401(self, server_url):
        error = raises_api_error(OpenMemory(base_url=server_url).add, "User likes tea")

        assert (error.status, error.err) == (401, "api key required")

    def test_wrong_key_is_403(self, server_url):
        error = raises_api_error(OpenMemory("k2", base_url=server_url).sectors)

        assert (error.status, error.err) == (403, "invalid api key")

    def test_right_key_works(self, server_url):
        om = OpenMemory("k1", base_url=server_url)

        created = om.add("User likes tea", user_id="alice")

        assert om.get(created["id"])["content"] == "User likes tea"
        assert om.sectors()["sectors"] == SECTOR_NAMES

    def test_health_needs_no_key(self, server_url):
        assert OpenMemory(base_url=server_url).health()["ok"] is True

    def test_x_api_key_header(self, server_url):
        def post(headers: dict) -> tuple[int, dict]:
            request = urllib.request.Request(
                server_url + "/memory/add",
                data=json.dumps({"content": "User likes tea", "user_id": "alice"}).encode(),
                headers={"Content-Type": "application/json", **headers},
                method="POST",
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    return response.status, json.load(response)
            except urllib.error.HTTPError as exc:
                return exc.code, json.load(exc)

        assert post({"x-api-key": "k1"})[0] == 200
        assert post({"x-api-key": "nope"}) == (403, {"err": "invalid api key"})
        assert post({}) == (401, {"err": "api key required"})
        status, body = post({"X-API-Key": "k1"})
        assert status == 200
        assert body["deduplicated"] is True


# --- the client on its own --------------------------------------------------------------------


def test_client_imports_without_django():
    script = (
        "import sys, openmemory\n"
        "om = openmemory.OpenMemory(api_key='k', base_url='http://127.0.0.1:9/')\n"
        "assert om.base_url == 'http://127.0.0.1:9', om.base_url\n"
        "assert issubclass(openmemory.OpenMemoryError, Exception)\n"
        "assert 'django' not in sys.modules, sorted(m for m in sys.modules if 'django' in m)\n"
        "print('ok')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}

    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok\n"


def test_unreachable_server_is_an_openmemory_error_with_status_0():
    client = OpenMemory(base_url="http://127.0.0.1:9", timeout=5)

    error = raises_api_error(client.health)

    assert error.status == 0
    assert error.err.startswith("cannot reach http://127.0.0.1:9")


# --- the User Management page's examples ------------------------------------------------------


@pytest.mark.live
def test_user_management_page_examples(server_url, settings, capsys):
    """The Python examples of the User Management page, as written there (but for base_url)."""
    settings.OM_API_KEYS = ["your_api_key"]
    settings.OM_USER_SUMMARY_INTERVAL = 30

    from openmemory import OpenMemory

    om = OpenMemory(api_key="your_api_key", base_url=server_url)

    # Add memory for specific user
    result = om.add(
        content="User prefers dark mode in applications",
        tags=["preferences", "ui"],
        user_id="user_123",
    )
    assert result["primary_sector"] == "semantic"

    # Query specific user's memories
    result = om.query(
        query="What are the user's preferences?", k=10, filters={"user_id": "user_123"}
    )

    for match in result["matches"]:
        print(f"{match['score']:.2f} - {match['content']}")

    # Get all memories for a user
    result = om.get_user_memories("user_123", limit=50, offset=0)

    print(f"User {result['user_id']} has {len(result['items'])} memories")

    for memory in result["items"]:
        print(f"- {memory['content'][:50]}...")

    # Get user summary
    summary = om.get_user_summary("user_123")

    print(f"User: {summary['user_id']}")
    print(f"Summary: {summary['summary']}")
    print(f"Reflections: {summary['reflection_count']}")
    print(f"Last updated: {summary['updated_at']}")

    # Force regeneration of user summary
    result = om.regenerate_user_summary("user_123")

    print(f"Summary regenerated: {result['ok']}")
    print(f"New summary: {result['summary']}")

    page = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"[01]\.\d\d - User prefers dark mode in applications", page[0])
    assert float(page[0][:4]) > 0
    assert page[1:4] == [
        "User user_123 has 1 memories",
        "- User prefers dark mode in applications...",
        "User: user_123",
    ]
    assert page[4] == "Summary: The user prefers dark mode in applications."
    assert page[5] == "Reflections: 1"
    assert re.fullmatch(r"Last updated: \d{13}", page[6])
    assert page[7:] == [
        "Summary regenerated: True",
        "New summary: The user prefers dark mode in applications.",
    ]

    # Multi-User Application Example
    class UserMemoryService:
        def __init__(self, user_id: str):
            self.user_id = user_id
            self.om = om

        def add_memory(self, content: str, tags: list | None = None):
            """Add memory for this user"""
            return self.om.add(content=content, tags=tags or [], user_id=self.user_id)

        def search(self, query: str, limit: int = 10):
            """Search user's memories"""
            return self.om.query(query=query, k=limit, filters={"user_id": self.user_id})

        def get_all(self, limit: int = 100):
            """Get all user memories"""
            return self.om.get_user_memories(user_id=self.user_id, limit=limit)

        def get_summary(self):
            """Get user summary"""
            return self.om.get_user_summary(self.user_id)

        def refresh_summary(self):
            """Regenerate user summary"""
            return self.om.regenerate_user_summary(self.user_id)

    # Usage
    user_service = UserMemoryService("user_123")

    # Add memory
    user_service.add_memory("Completed React tutorial", ["learning"])

    # Search
    results = user_service.search("What has user learned?")

    # Get summary
    summary = user_service.get_summary()
    print(f"User profile: {summary['summary']}")

    assert {m["content"] for m in results["matches"]} == {
        "User prefers dark mode in applications",
        "Completed React tutorial",
    }
    assert [m["content"] for m in user_service.get_all()["items"]] == [
        "Completed React tutorial",
        "User prefers dark mode in applications",
    ]
    # One new memory is below OM_USER_SUMMARY_INTERVAL: the stored summary is served as is.
    assert capsys.readouterr().out == (
        "User profile: The user prefers dark mode in applications.\n"
    )
    refreshed = user_service.refresh_summary()
    assert refreshed["reflection_count"] == 3
    assert refreshed["summary"] == (
        "The user completed React tutorial. The user prefers dark mode in applications."
    )

    # Error handling: an unknown user has no memories
    result = om.get_user_memories("nonexistent_user")
    assert result["items"] == []
