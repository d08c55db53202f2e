"""Request ids: echoed when sane, generated otherwise; JSON lines that hold any message."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from core.logs import JsonFormatter, RequestIdFilter, request_id_var


@pytest.mark.parametrize("sent", ["abc-123", "4bf92f3577b34da6a3ce929d0e0e4736", "req:7/a=b"])
def test_a_sane_request_id_is_kept(api, sent):
    assert api.get("/health", HTTP_X_REQUEST_ID=sent)["X-Request-ID"] == sent


@pytest.mark.parametrize("sent", [None, "", "has space", 'quo"te', "x" * 200, "\u00e9t\u00e9"])
def test_otherwise_a_new_id_is_made(api, sent):
    headers = {} if sent is None else {"HTTP_X_REQUEST_ID": sent}
    first = api.get("/health", **headers)["X-Request-ID"]
    second = api.get("/health", **headers)["X-Request-ID"]

    assert first != second
    assert len(first) == 32 and int(first, 16) >= 0


def _line(record: logging.LogRecord) -> str:
    RequestIdFilter().filter(record)  # as the console handler does
    return JsonFormatter().format(record)


def test_an_exception_and_odd_arguments_still_make_one_json_line():
    token = request_id_var.set("rid-1")
    try:
        try:
            raise ValueError("boom\nsecond line")
        except ValueError:
            record = logging.LogRecord(
                "openmemory", logging.ERROR, __file__, 1, "failed on %s", (object,), sys.exc_info()
            )
        line = _line(record)
    finally:
        request_id_var.reset(token)

    assert "\n" not in line
    entry = json.loads(line)
    assert entry["request_id"] == "rid-1"
    assert entry["message"] == "failed on <class 'object'>"
    assert "ValueError: boom" in entry["exc"]
    assert (entry["level"], entry["logger"]) == ("ERROR", "openmemory")


def test_lines_outside_a_request_have_a_null_id():
    record = logging.LogRecord("openmemory", logging.INFO, __file__, 1, "tick", (), None)

    assert json.loads(_line(record))["request_id"] is None
