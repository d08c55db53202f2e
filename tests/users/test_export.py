"""Data rights: a user's export as JSON Lines, and export/import of a whole database."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from core.clock import to_ms
from memories.lexical import bm25
from memories.models import Memory


@pytest.fixture
def two_users(add):
    ids = [
        add("Alice likes tea", user_id="alice", tags=["drinks"], metadata={"src": "chat"})["id"],
        add("Alice lives in Porto", user_id="alice")["id"],
        add("Bob likes coffee", user_id="bob")["id"],
    ]
    return ids


def test_user_export_streams_json_lines_of_that_user_only(two_users, api):
    response = api.get("/users/alice/export")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    assert [line["content"] for line in lines] == ["Alice likes tea", "Alice lives in Porto"]
    assert lines[0]["tags"] == ["drinks"] and lines[0]["metadata"] == {"src": "chat"}
    assert {line["user_id"] for line in lines} == {"alice"}


def test_export_then_import_restores_everything_and_is_idempotent(two_users, api, tmp_path):
    path = tmp_path / "all.jsonl"
    call_command("export", "--output", str(path), stderr=io.StringIO())
    before = {str(m.pk): (m.content, m.user_id, to_ms(m.created_at)) for m in Memory.objects.all()}
    Memory.objects.all().delete()

    out = io.StringIO()
    call_command("import", str(path), stdout=out, stderr=io.StringIO())

    assert "created 3, skipped 0" in out.getvalue()
    after = {str(m.pk): (m.content, m.user_id, to_ms(m.created_at)) for m in Memory.objects.all()}
    assert after == before
    assert list(Memory.objects.get(content="Alice likes tea").tags.values_list("name", flat=True))
    matches = api.post(
        "/memory/query", {"query": "Porto", "filters": {"user_id": "alice"}}, format="json"
    ).json()["matches"]
    assert matches[0]["content"] == "Alice lives in Porto"
    # Imported memories are in the word index and keep their order as each user's context.
    porto = Memory.objects.get(content="Alice lives in Porto").pk
    assert list(bm25("Porto", user_id="alice").as_dict()) == [porto]
    order = Memory.objects.for_user("alice").order_by("position").values_list("content", flat=True)
    assert list(order) == ["Alice likes tea", "Alice lives in Porto"]
    # On PostgreSQL they await the HNSW index as added memories do (the deleted ones left
    # the queue with their rows); this test's transaction never commits to ask the indexer.
    waiting = 3 if connection.vendor == "postgresql" else 0
    assert api.get("/health").json()["vectors_pending"] == waiting

    again = io.StringIO()
    call_command("import", str(path), stdout=again, stderr=io.StringIO())
    assert "created 0, skipped 3" in again.getvalue()
    assert Memory.objects.count() == 3


def test_an_interrupted_import_resumes(two_users, tmp_path):
    path = tmp_path / "all.jsonl"
    call_command("export", "--output", str(path), stderr=io.StringIO())
    Memory.objects.all().delete()
    first_line = path.read_text().splitlines()[0] + "\n"
    (tmp_path / "part.jsonl").write_text(first_line)
    call_command("import", str(tmp_path / "part.jsonl"), stdout=io.StringIO(), stderr=io.StringIO())

    out = io.StringIO()
    call_command("import", str(path), stdout=out, stderr=io.StringIO())

    assert "created 2, skipped 1" in out.getvalue()


def test_a_bad_file_imports_nothing(tmp_path, db):
    path = tmp_path / "bad.jsonl"
    good = {"id": "7d4ae1b6-2d64-4b2e-9a9f-000000000001", "content": "fine", "user_id": "u"}
    path.write_text(json.dumps(good) + "\n" + json.dumps({"id": "nope", "content": ""}) + "\n")

    with pytest.raises(CommandError, match="line 2"):
        call_command("import", str(path), stdout=io.StringIO(), stderr=io.StringIO())

    assert Memory.objects.count() == 0


def test_a_user_id_ending_in_a_newline_is_refused_not_a_500(api):
    added = api.post("/memory/add", {"content": "Bob likes tea", "user_id": "bob\n"}, format="json")
    exported = api.get("/users/bob%0A/export")

    assert added.status_code == 400 and added.json() == {"err": "user_id required"}
    assert exported.status_code == 400 and exported.json() == {"err": "user_id required"}
    assert Memory.objects.count() == 0
