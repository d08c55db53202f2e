"""Input rules shared by every endpoint: user ids, text, tags and metadata."""

from __future__ import annotations

import json
import math
import re

from core.exceptions import ServiceError

# Letters, digits and the punctuation of common id schemes (emails, "auth0|123", UUIDs);
# never '/', whitespace or anything that could read as a path. The anchors are for the
# OpenAPI schema; Python's `$` also matches before a final newline, so code checks an id with
# is_user_id (fullmatch), never USER_ID_RE.match.
USER_ID_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@:+=|-]{0,127}$")
MAX_TAGS = 32
MAX_TAG_CHARS = 64
MAX_METADATA_BYTES = 64_000
MAX_METADATA_DEPTH = 16


def is_user_id(value: object) -> bool:
    return isinstance(value, str) and USER_ID_RE.fullmatch(value) is not None


def clean_user_id(value: object) -> str:
    if not isinstance(value, str) or not is_user_id(value):
        raise ServiceError("user_id required")
    return value


def clean_text(value: str, field: str) -> str:
    # PostgreSQL cannot store NUL, and a lone surrogate (valid in JSON escapes) cannot be
    # encoded at all: both must be refused here, not discovered as a 500 on insert.
    if "\x00" in value:
        raise ServiceError(f"{field} must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ServiceError(f"{field} must be valid unicode text") from None
    return value


def clean_tags(values: list[str]) -> list[str]:
    if len(values) > MAX_TAGS:
        raise ServiceError(f"at most {MAX_TAGS} tags")
    tags: list[str] = []
    for raw in values:
        tag = clean_text(raw, "tags").strip()
        if not tag:
            raise ServiceError("tags must be non-empty strings")
        if len(tag) > MAX_TAG_CHARS:
            raise ServiceError(f"tags must be at most {MAX_TAG_CHARS} characters")
        if tag not in tags:
            tags.append(tag)
    return tags


def clean_metadata(value: dict) -> dict:
    _check_json(value, depth=0)
    if len(json.dumps(value)) > MAX_METADATA_BYTES:
        raise ServiceError(f"metadata must be at most {MAX_METADATA_BYTES} bytes as JSON")
    return value


def _check_json(value: object, depth: int) -> None:
    if depth > MAX_METADATA_DEPTH:
        raise ServiceError(f"metadata nested deeper than {MAX_METADATA_DEPTH} levels")
    if isinstance(value, dict):
        for key, item in value.items():
            clean_text(key, "metadata")
            _check_json(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_json(item, depth + 1)
    elif isinstance(value, str):
        clean_text(value, "metadata")
    elif isinstance(value, float) and not math.isfinite(value):
        # JSON has no inf or NaN: the database would refuse them (or store invalid JSON).
        raise ServiceError("metadata numbers must be finite")
