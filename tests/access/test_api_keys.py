"""Stored API keys: hashed, revocable, and a user-scoped key reaches only its own user."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from access.models import ApiKey
from access.services import api_key_create, api_key_revoke
from memories.models import Memory


def client_with(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def admin(db, settings) -> APIClient:
    settings.OM_API_KEYS = ["env-admin-key"]
    return client_with("env-admin-key")


@pytest.fixture
def alice(admin) -> APIClient:
    """A key scoped to alice; bob and the shared pool already hold memories."""
    for content, user_id in [("Alice likes tea", "alice"), ("Bob likes tea", "bob"), ("Tea", None)]:
        admin.post("/memory/add", {"content": content, "user_id": user_id}, format="json")
    _, raw = api_key_create(user_id="alice", name="alice's app")
    return client_with(raw)


def bob_memory_id() -> str:
    return str(Memory.objects.get(user_id="bob").pk)


def test_scoped_key_adds_to_its_own_user(alice):
    response = alice.post("/memory/add", {"content": "Alice owns a kettle"}, format="json")

    assert response.status_code == 200
    assert Memory.objects.get(pk=response.json()["id"]).user_id == "alice"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/memory/add", {"content": "sneaky", "user_id": "bob"}),
        (
            "post",
            "/memory/add/batch",
            {"items": [{"content": "x"}, {"content": "y", "user_id": "bob"}]},
        ),
        ("post", "/memory/query", {"query": "tea", "filters": {"user_id": "bob"}}),
        ("post", "/memory/query", {"query": "tea", "user_id": "bob"}),
        ("post", "/memory/context", {"user_id": "bob", "query": "tea"}),
        ("get", "/memory/all?user_id=bob", None),
        ("get", "/users/bob/memories", None),
        ("delete", "/users/bob/memories", None),
        ("get", "/users/bob/summary", None),
        ("get", "/users/bob/export", None),
        ("post", "/users/bob/summary/regenerate", None),
        ("post", "/users/summaries/regenerate-all", None),
        # Another user named in the query string, where the endpoint reads no user from it.
        ("post", "/memory/add?user_id=bob", {"content": "sneaky"}),
        ("post", "/memory/add/batch?user_id=bob", {"items": [{"content": "sneaky"}]}),
        ("post", "/memory/query?user_id=bob", {"query": "tea"}),
        ("post", "/memory/context?user_id=bob", {"user_id": "alice", "query": "tea"}),
        ("get", "/memory/all?user_id=bob&user_id=alice", None),
        ("get", "/users/alice/memories?user_id=bob", None),
        ("get", "/users/alice/summary?user_id=bob", None),
        ("get", "/users/alice/export?user_id=bob", None),
        # ... or in the body, where the endpoint reads no user from it.
        ("post", "/memory/context", {"user_id": "alice", "filters": {"user_id": "bob"}}),
    ],
)
def test_scoped_key_is_refused_other_users(alice, method, path, body):
    before = Memory.objects.count()

    response = getattr(alice, method)(path, body, format="json")

    assert response.status_code == 403
    assert "err" in response.json()
    assert Memory.objects.count() == before


@pytest.mark.parametrize(
    ("method", "query", "body"),
    [
        ("patch", "?user_id=bob", {"content": "Alice likes coffee"}),
        ("patch", "", {"content": "Alice likes coffee", "user_id": "bob"}),
        ("get", "?user_id=bob", None),
        ("delete", "?user_id=bob", None),
    ],
)
def test_scoped_key_naming_another_user_on_its_own_memory_is_403(alice, method, query, body):
    mine = Memory.objects.get(user_id="alice")

    response = getattr(alice, method)(f"/memory/{mine.pk}{query}", body, format="json")

    assert response.status_code == 403
    assert response.json() == {"err": "this API key may only access user alice"}
    mine.refresh_from_db()
    assert (mine.content, mine.version) == ("Alice likes tea", 1)


def test_scoped_key_may_name_its_own_user_anywhere(alice):
    mine = Memory.objects.get(user_id="alice")

    patched = alice.patch(
        f"/memory/{mine.pk}?user_id=alice", {"content": "Alice likes coffee"}, format="json"
    )
    added = alice.post(
        "/memory/add?user_id=alice", {"content": "Alice owns a kettle"}, format="json"
    )

    assert patched.status_code == 200 and patched.json()["content"] == "Alice likes coffee"
    assert added.status_code == 200
    assert Memory.objects.get(pk=added.json()["id"]).user_id == "alice"


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_another_users_memory_id_is_404(alice, method):
    response = getattr(alice, method)(
        f"/memory/{bob_memory_id()}", {"content": "mine now"}, format="json"
    )

    assert response.status_code == 404
    assert Memory.objects.get(user_id="bob").content == "Bob likes tea"


def test_reinforcing_another_users_memory_is_404(alice):
    response = alice.post("/memory/reinforce", {"id": bob_memory_id()}, format="json")

    assert response.status_code == 404


def test_unscoped_reads_are_narrowed_to_the_keys_user(alice):
    matches = alice.post("/memory/query", {"query": "tea"}, format="json").json()["matches"]
    listing = alice.get("/memory/all").json()["items"]

    assert [m["user_id"] for m in matches] == ["alice"]
    assert [m["user_id"] for m in listing] == ["alice"]


def test_scoped_key_uses_its_own_user_endpoints(alice):
    assert alice.get("/users/alice/memories").status_code == 200
    assert alice.post("/memory/context", {"user_id": "alice"}, format="json").status_code == 200


def test_admin_keys_see_everyone(alice, admin):
    _, raw = api_key_create(user_id=None, name="ops")
    stored_admin = client_with(raw)

    for client in (admin, stored_admin):
        items = client.get("/memory/all").json()["items"]
        assert sorted(str(m["user_id"]) for m in items) == ["None", "alice", "bob"]


def test_keys_are_stored_hashed_and_record_use(alice):
    key = ApiKey.objects.get(user_id="alice")

    assert key.key_hash not in ("", None) and key.prefix.startswith("om_")
    assert key.last_used_at is None
    alice.get("/memory/all")
    key.refresh_from_db()
    assert key.last_used_at is not None


def test_revoked_key_is_refused(alice):
    api_key_revoke(key_id=ApiKey.objects.get(user_id="alice").pk)

    response = alice.get("/memory/all")

    assert response.status_code == 403
    assert response.json() == {"err": "invalid api key"}


def test_a_stored_key_closes_an_open_server(api, settings):
    settings.OM_API_KEYS = []
    assert api.get("/memory/all").status_code == 200

    api_key_create(user_id="alice")

    assert api.get("/memory/all").status_code == 401


def test_create_and_revoke_commands(api, settings):
    settings.OM_API_KEYS = []
    out, err = io.StringIO(), io.StringIO()

    call_command("create_api_key", "--user", "carol", "--name", "carol app", stdout=out, stderr=err)

    raw = out.getvalue().strip()
    assert raw.startswith("om_") and "Shown once" in err.getvalue()
    assert raw not in str(list(ApiKey.objects.values()))
    carol = client_with(raw)
    assert carol.post("/memory/add", {"content": "Carol cooks"}, format="json").status_code == 200
    assert carol.get("/users/dave/memories").status_code == 403

    call_command("revoke_api_key", raw[:10], stdout=io.StringIO())
    assert carol.get("/memory/all").status_code == 403


def test_create_command_rejects_a_bad_user_id(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="invalid --user"):
        call_command("create_api_key", "--user", "../x")


def test_keys_are_created_in_the_admin_and_shown_once(db, client, settings):
    from django.contrib.auth.models import User
    from django.contrib.messages import get_messages

    settings.OM_API_KEYS = []
    client.force_login(User.objects.create_superuser("ops", "ops@example.com", "pw-ops-123"))

    response = client.post("/admin/access/apikey/add/", {"name": "app", "user_id": "erin"})

    assert response.status_code == 302
    message = next(str(m) for m in get_messages(response.wsgi_request) if "om_" in str(m))
    raw = message.rsplit(" ", 1)[-1]
    key = ApiKey.objects.get()
    assert (key.user_id, key.name, key.prefix) == ("erin", "app", raw[:10])
    erin = client_with(raw)
    assert erin.post("/memory/add", {"content": "Erin sails"}, format="json").status_code == 200
    assert erin.get("/users/frank/memories").status_code == 403
    assert raw in client.get("/admin/access/apikey/").content.decode()  # the one showing
    assert raw not in client.get("/admin/access/apikey/").content.decode()
