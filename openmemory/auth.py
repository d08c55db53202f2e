"""API-key authentication: `Authorization: Bearer <key>` or `x-api-key: <key>`.

Keys come from OM_API_KEY (admin keys) and from the ApiKey table (admin or user-scoped).
The API is open only while OM_API_KEY is unset and no key was ever stored: revoking the last
stored key must not open the server.
"""

from __future__ import annotations

import hmac
import time

from django.conf import settings
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from openmemory.ratelimit import check_auth_failures, record_auth_failure
from openmemory.scope import Scope

# Whether any stored key exists, cached briefly: asking on every request would cost a query.
# A key created or revoked in this process clears it at once; in other processes (a
# `manage.py create_api_key` beside a running server) it takes effect within this time.
STORED_KEYS_TTL = 5.0
_stored_keys: tuple[float, bool] | None = None


def forget_stored_keys() -> None:
    global _stored_keys
    _stored_keys = None


def _any_stored_key() -> bool:
    global _stored_keys
    now = time.monotonic()
    if _stored_keys is None or now - _stored_keys[0] > STORED_KEYS_TTL:
        from users.models import ApiKey

        _stored_keys = (now, ApiKey.objects.exists())
    return _stored_keys[1]


class ApiClient:
    """The caller behind an accepted key (DRF wants a user-like object)."""

    is_authenticated = True

    def __init__(self, scope: Scope, key_id: int | None = None) -> None:
        self.scope = scope
        self.key_id = key_id


def presented_key(request: Request) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return request.META.get("HTTP_X_API_KEY", "").strip() or None


def _from_another_site(request: Request) -> bool:
    """Whether a browser sent this for a page of another origin. Browsers send Origin with
    every cross-origin request but plain GETs, and Sec-Fetch-Site with all of them; curl,
    Python and Node send neither. A page can POST text/plain anywhere without a preflight."""
    origin = request.META.get("HTTP_ORIGIN")
    if origin is not None:
        own = f"{request.scheme}://{request.get_host()}"
        return origin != own and origin not in settings.CSRF_TRUSTED_ORIGINS
    return request.META.get("HTTP_SEC_FETCH_SITE") in ("cross-site", "same-site")


def _is_env_key(presented: str) -> bool:
    # Compare against every key so timing does not reveal which prefix matched.
    matched = False
    for key in settings.OM_API_KEYS:
        matched |= hmac.compare_digest(presented.encode(), key.encode())
    return matched


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[ApiClient, str] | None:
        presented = presented_key(request)
        if not settings.OM_API_KEYS and not _any_stored_key():
            # Open to every program on the machine, but not to the web pages its browser shows.
            if _from_another_site(request):
                raise exceptions.PermissionDenied(
                    "cross-site browser request refused: the API has no key"
                )
            return (ApiClient(Scope()), "")
        if presented is None:
            return None
        check_auth_failures(request)
        if _is_env_key(presented):
            return (ApiClient(Scope()), presented)
        from users.selectors import api_key_find
        from users.services import api_key_touch

        key = api_key_find(raw=presented)
        if key is None:
            record_auth_failure(request)
            raise exceptions.PermissionDenied("invalid api key")
        api_key_touch(key=key)
        return (ApiClient(Scope(key.user_id), key.pk), presented)

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="openmemory"'


class HasApiKey(permissions.BasePermission):
    def has_permission(self, request: Request, view) -> bool:
        if request.user is None:
            raise exceptions.NotAuthenticated("api key required")
        return True


def scope_of(request: Request) -> Scope:
    return request.user.scope
