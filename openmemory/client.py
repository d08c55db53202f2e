"""The `OpenMemory` Python client: stdlib-only HTTP calls, importable without Django."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


class OpenMemoryError(Exception):
    """A non-2xx answer from the server; `status` and `err` come from the response."""

    def __init__(self, status: int, err: str) -> None:
        super().__init__(f"{status}: {err}")
        self.status = status
        self.err = err


class OpenMemory:
    def __init__(
        self,
        api_key: str | None = None,
        base_url: str = "http://localhost:8080",
        timeout: float = 60.0,
    ) -> None:
        self.api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    # -- transport -----------------------------------------------------------------------
    def _request(
        self, method: str, path: str, body: dict | None = None, params: dict | None = None
    ) -> Any:
        url = self.base_url + path
        if params:
            clean = {k: v for k, v in params.items() if v is not None}
            if clean:
                url += "?" + urllib.parse.urlencode(clean)
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise OpenMemoryError(exc.code, _error_text(exc.read())) from None
        except urllib.error.URLError as exc:
            raise OpenMemoryError(0, f"cannot reach {self.base_url}: {exc.reason}") from None
        return json.loads(raw) if raw else None

    @staticmethod
    def _user_path(user_id: str) -> str:
        return "/users/" + urllib.parse.quote(user_id, safe="")

    # -- memories ------------------------------------------------------------------------
    def add(
        self,
        content: str,
        tags: list[str] | None = None,
        metadata: dict | None = None,
        user_id: str | None = None,
    ) -> dict:
        body: dict[str, Any] = {"content": content}
        if tags is not None:
            body["tags"] = tags
        if metadata is not None:
            body["metadata"] = metadata
        if user_id is not None:
            body["user_id"] = user_id
        return self._request("POST", "/memory/add", body)

    def add_batch(self, items: list[dict]) -> dict:
        return self._request("POST", "/memory/add/batch", {"items": items})

    def query(self, query: str, k: int = 8, filters: dict | None = None) -> dict:
        body: dict[str, Any] = {"query": query, "k": k}
        if filters:
            body["filters"] = filters
        return self._request("POST", "/memory/query", body)

    def get(self, memory_id: str) -> dict:
        return self._request("GET", f"/memory/{urllib.parse.quote(memory_id, safe='')}")

    def update(
        self,
        memory_id: str,
        content: str | None = None,
        tags: list[str] | None = None,
        metadata: dict | None = None,
    ) -> dict:
        body = {
            k: v
            for k, v in {"content": content, "tags": tags, "metadata": metadata}.items()
            if v is not None
        }
        return self._request("PATCH", f"/memory/{urllib.parse.quote(memory_id, safe='')}", body)

    def delete(self, memory_id: str) -> dict:
        return self._request("DELETE", f"/memory/{urllib.parse.quote(memory_id, safe='')}")

    def all(
        self,
        limit: int = 100,
        offset: int = 0,
        sector: str | None = None,
        user_id: str | None = None,
    ) -> dict:
        params = {"l": limit, "u": offset, "sector": sector, "user_id": user_id}
        return self._request("GET", "/memory/all", params=params)

    def reinforce(self, memory_id: str, boost: float | None = None) -> dict:
        body: dict[str, Any] = {"id": memory_id}
        if boost is not None:
            body["boost"] = boost
        return self._request("POST", "/memory/reinforce", body)

    # -- users ---------------------------------------------------------------------------
    def get_user_memories(self, user_id: str, limit: int = 100, offset: int = 0) -> dict:
        params = {"l": limit, "u": offset}
        return self._request("GET", self._user_path(user_id) + "/memories", params=params)

    def delete_user_memories(self, user_id: str) -> dict:
        return self._request("DELETE", self._user_path(user_id) + "/memories")

    def get_user_summary(self, user_id: str) -> dict:
        return self._request("GET", self._user_path(user_id) + "/summary")

    def regenerate_user_summary(self, user_id: str) -> dict:
        return self._request("POST", self._user_path(user_id) + "/summary/regenerate")

    # -- server --------------------------------------------------------------------------
    def health(self) -> dict:
        return self._request("GET", "/health")

    def sectors(self) -> dict:
        return self._request("GET", "/sectors")


def _error_text(raw: bytes) -> str:
    try:
        payload = json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")[:500]
    if isinstance(payload, dict) and isinstance(payload.get("err"), str):
        return payload["err"]
    return str(payload)[:500]
