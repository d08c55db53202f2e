"""API-key authentication: `Authorization: Bearer <key>` or `x-api-key: <key>`."""

from __future__ import annotations

import hmac

from django.conf import settings
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request


class ApiClient:
    """The caller behind an accepted key (DRF wants a user-like object)."""

    is_authenticated = True

    def __init__(self, key: str | None) -> None:
        self.key = key


def _presented_key(request: Request) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return request.META.get("HTTP_X_API_KEY", "").strip() or None


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[ApiClient, str] | None:
        keys = settings.OM_API_KEYS
        if not keys:
            return (ApiClient(None), "")
        presented = _presented_key(request)
        if presented is None:
            return None
        # Compare against every key so timing does not reveal which prefix matched.
        matched = False
        for key in keys:
            matched |= hmac.compare_digest(presented.encode(), key.encode())
        if not matched:
            raise exceptions.PermissionDenied("invalid api key")
        return (ApiClient(presented), presented)

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="openmemory"'


class HasApiKey(permissions.BasePermission):
    def has_permission(self, request: Request, view) -> bool:
        if request.user is None:
            raise exceptions.NotAuthenticated("api key required")
        return True
