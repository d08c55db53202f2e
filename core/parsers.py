"""Request input: strict JSON bodies (also when labelled as a form), checked by serializers."""

from __future__ import annotations

import json
import math

from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser


def parse(serializer_class, data) -> dict:
    """`data` validated by `serializer_class` (a 400 {"err"} through the handler otherwise)."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class LenientJSONParser(BaseParser):
    """Parses every body as JSON.

    `curl -d '{...}'` labels JSON as application/x-www-form-urlencoded; clients of this API
    only ever send JSON, so the body is read as JSON whatever its label.
    """

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        if not raw.strip():
            return {}
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ParseError("body is not valid UTF-8") from None
        try:
            return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
        except RecursionError:
            raise ParseError("JSON body is nested too deeply") from None
        except OutOfRange as exc:
            raise ParseError(str(exc)) from None
        except ValueError as exc:
            raise ParseError(f"malformed JSON: {exc}") from None


class OutOfRange(ValueError):
    """A JSON number that is valid JSON but too large for a float."""


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    # json.loads turns 1e999 into inf without asking parse_constant; inf cannot be stored as
    # JSON (the database refuses it) nor compared meaningfully, so it is refused here.
    value = float(text)
    if not math.isfinite(value):
        raise OutOfRange(f"number out of range: {text}")
    return value
