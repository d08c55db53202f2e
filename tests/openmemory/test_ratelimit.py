"""Rate limits: scoped keys are limited and admin keys are not (by default); addresses come from
the connection unless proxies are trusted; invalid keys are throttled per address."""

from __future__ import annotations

import pytest

from access.services import api_key_create

ATTACKER = "203.0.113.7"
LOAD_BALANCER = "198.51.100.1"
PROXY = "10.0.0.1"


def bearer(key: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


@pytest.fixture
def admin_key(settings) -> str:
    settings.OM_API_KEYS = ["env-admin-key"]
    return "env-admin-key"


@pytest.fixture
def stored_admin_key(admin_key) -> str:
    return api_key_create(user_id=None, name="ops")[1]


@pytest.fixture
def alice_key(admin_key) -> str:
    return api_key_create(user_id="alice", name="alice's app")[1]


@pytest.mark.parametrize("key", ["admin_key", "stored_admin_key"])
def test_a_backfill_with_an_admin_key_is_never_refused(api, settings, request, key):
    settings.OM_RATE_LIMIT = 3
    headers = bearer(request.getfixturevalue(key))

    answers = [
        api.post("/memory/add", {"content": f"fact {i}", "user_id": "u"}, format="json", **headers)
        for i in range(20)
    ]

    assert {a.status_code for a in answers} <= {200, 201}
    assert "X-RateLimit-Limit" not in answers[-1].headers


def test_a_user_scoped_key_keeps_its_limit(api, settings, alice_key):
    settings.OM_RATE_LIMIT = 3

    answers = [api.get("/memory/all", **bearer(alice_key)) for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[0].headers["X-RateLimit-Limit"] == "3"


def test_admin_keys_have_their_own_optional_limit(api, settings, admin_key):
    settings.OM_ADMIN_RATE_LIMIT = 2

    answers = [api.get("/memory/all", **bearer(admin_key)) for _ in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 429]
    assert 1 <= int(answers[2].headers["Retry-After"]) <= 61


def test_a_forged_forwarded_for_does_not_escape_the_limit(api, settings):
    settings.OM_RATE_LIMIT = 3

    answers = [
        api.get("/health", REMOTE_ADDR=ATTACKER, HTTP_X_FORWARDED_FOR=f"192.0.2.{i}")
        for i in range(4)
    ]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]


def test_a_forged_forwarded_for_does_not_drain_another_clients_budget(api, settings):
    settings.OM_RATE_LIMIT = 3
    for _ in range(5):
        api.get("/health", REMOTE_ADDR=ATTACKER, HTTP_X_FORWARDED_FOR=LOAD_BALANCER)

    assert api.get("/health", REMOTE_ADDR=LOAD_BALANCER).status_code == 200


def test_behind_trusted_proxies_the_address_the_proxy_saw_counts(api, settings):
    settings.OM_RATE_LIMIT = 3
    settings.OM_TRUSTED_PROXIES = 1

    # The proxy appends the address it saw; whatever the client wrote before it is ignored.
    forged = [
        api.get("/health", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=f"192.0.2.{i}, {ATTACKER}")
        for i in range(4)
    ]
    other = api.get("/health", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=LOAD_BALANCER)

    assert [a.status_code for a in forged] == [200, 200, 200, 429]
    assert other.status_code == 200


def test_an_open_server_counts_per_address_under_the_admin_limit(api, settings):
    settings.OM_API_KEYS = []
    settings.OM_RATE_LIMIT = 1
    settings.OM_ADMIN_RATE_LIMIT = 2

    answers = [
        api.get("/memory/all", REMOTE_ADDR=ATTACKER, HTTP_X_FORWARDED_FOR=f"192.0.2.{i}")
        for i in range(3)
    ]

    assert [a.status_code for a in answers] == [200, 200, 429]
    assert api.get("/memory/all", REMOTE_ADDR=LOAD_BALANCER).status_code == 200


def test_guessing_keys_is_throttled_per_address(api, settings, admin_key):
    settings.OM_AUTH_FAILURE_LIMIT = 5
    guesses = [
        api.get("/memory/all", REMOTE_ADDR=ATTACKER, **bearer(f"guess-{i}")) for i in range(6)
    ]

    # Past the limit even the right key is refused, so a right guess looks like a wrong one.
    right = api.get("/memory/all", REMOTE_ADDR=ATTACKER, **bearer(admin_key))

    assert [g.status_code for g in guesses] == [403] * 5 + [429]
    assert right.status_code == 429
    assert right.json()["err"].startswith("too many invalid API keys")
    assert 1 <= int(right.headers["Retry-After"]) <= 61
    assert api.get("/memory/all", REMOTE_ADDR=LOAD_BALANCER, **bearer(admin_key)).status_code == 200


def test_bad_key_throttle_is_on_by_default(api, admin_key):
    guesses = [api.get("/memory/all", **bearer(f"guess-{i}")) for i in range(30)]

    assert guesses[-1].status_code == 429
