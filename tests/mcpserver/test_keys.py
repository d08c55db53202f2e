"""/mcp and `manage.py mcp` refuse a missing or wrong key as the HTTP API does, before the
MCP SDK sees anything."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from access.services import api_key_create, api_key_revoke

INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}


@pytest.fixture
def keyed(db, settings) -> None:
    settings.OM_API_KEYS = ["admin-key"]


def post(key: str | None):
    client = APIClient()
    if key:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client.post("/mcp", INITIALIZE, format="json")


def test_http_without_a_key_is_401(keyed):
    response = post(None)

    assert (response.status_code, response.json()) == (401, {"err": "api key required"})
    assert response["WWW-Authenticate"] == 'Bearer realm="openmemory"'


def test_http_with_a_wrong_or_revoked_key_is_403(keyed):
    key, raw = api_key_create(user_id="alice")
    api_key_revoke(key_id=key.pk)

    for presented in ("not-a-key", raw):
        response = post(presented)
        assert (response.status_code, response.json()) == (403, {"err": "invalid api key"})


@pytest.mark.parametrize("method", ["get", "delete", "put"])
def test_only_post_is_served(keyed, method):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer admin-key")

    response = getattr(client, method)("/mcp")

    assert response.status_code == 405
    assert response.json() == {"err": f"method {method.upper()} not allowed"}


def test_http_bad_keys_are_rate_limited_like_the_api(keyed, settings):
    settings.OM_AUTH_FAILURE_LIMIT = 2

    assert [post("wrong").status_code for _ in range(3)] == [403, 403, 429]


@pytest.mark.parametrize(
    ("key", "message"),
    [(None, "api key required"), ("not-a-key", "invalid api key")],
)
def test_stdio_refuses_to_start_without_a_valid_key(keyed, settings, key, message):
    settings.OM_MCP_API_KEY = None

    with pytest.raises(CommandError, match=message):
        call_command("mcp", *(["--api-key", key] if key else []))


def test_an_open_server_refuses_other_hosts_and_other_sites(db, settings):
    """Django's checks stand in for the SDK's DNS-rebinding guard, which the bridge turns off."""
    settings.OM_API_KEYS = []
    settings.ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"]
    client = APIClient()

    rebound = client.post("/mcp", INITIALIZE, format="json", HTTP_HOST="rebound.example")
    cross_site = client.post(
        "/mcp", INITIALIZE, format="json", HTTP_HOST="localhost", HTTP_ORIGIN="http://evil.example"
    )

    assert (rebound.status_code, rebound.json()) == (400, {"err": "bad request"})
    assert (cross_site.status_code, cross_site.json()) == (
        403,
        {"err": "cross-site browser request refused: the API has no key"},
    )
