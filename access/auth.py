"""API-key authentication: `Authorization: Bearer <key>` or `x-api-key: <key>`.

Keys come from OM_API_KEY (admin keys) and from the ApiKey table (admin or user-scoped).
The API is open only while OM_API_KEY is unset and no key was ever stored: revoking the last
stored key must not open the server.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from access.scope import Scope
from access.selectors import any_stored_key, api_key_find
from access.services import api_key_touch
from core.ratelimit import check_auth_failures, record_auth_failure


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


def api_is_open() -> bool:
    return not settings.OM_API_KEYS and not any_stored_key()


def caller_for_key(presented: str) -> ApiClient | None:
    """The caller a presented key stands for, or None when no such key is active."""
    if _is_env_key(presented):
        return ApiClient(Scope())
    key = api_key_find(raw=presented)
    if key is None:
        return None
    api_key_touch(key=key)
    return ApiClient(Scope(key.user_id), key.pk)


def scope_for_key(presented: str | None) -> Scope:
    """What a caller with no HTTP request (the stdio MCP server) may reach with this key:
    the HTTP rules, less the per-address limits and browser checks that need a request."""
    if api_is_open():
        return Scope()
    if presented is None:
        raise exceptions.NotAuthenticated("api key required")
    client = caller_for_key(presented)
    if client is None:
        raise exceptions.PermissionDenied("invalid api key")
    return client.scope


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[ApiClient, str] | None:
        presented = presented_key(request)
        if api_is_open():
            # Open to every program on the machine, but not to the web pages its browser shows.
            if _from_another_site(request):
                raise exceptions.PermissionDenied(
                    "cross-site browser request refused: the API has no key"
                )
            return (ApiClient(Scope()), "")
        if presented is None:
            return None
        check_auth_failures(request)
        client = caller_for_key(presented)
        if client is None:
            record_auth_failure(request)
            raise exceptions.PermissionDenied("invalid api key")
        return (client, presented)

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="openmemory"'


class HasApiKey(permissions.BasePermission):
    def has_permission(self, request: Request, view) -> bool:
        if request.user is None:
            raise exceptions.NotAuthenticated("api key required")
        return True


def scope_of(request: Request) -> Scope:
    return request.user.scope
