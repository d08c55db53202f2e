"""The OpenAPI schema and Swagger UI, and schemathesis fuzzing a live server against it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.live import API_KEY, ROOT

ROUTES = {
    "/memory/add",
    "/memory/add/batch",
    "/memory/query",
    "/memory/context",
    "/memory/all",
    "/memory/reinforce",
    "/memory/{memory_id}",
    "/users/{user_id}/memories",
    "/users/{user_id}/summary",
    "/users/{user_id}/summary/regenerate",
    "/users/{user_id}/export",
    "/users/summaries/regenerate-all",
    "/health",
    "/sectors",
}


def test_schema_describes_every_endpoint_and_the_error_shape(api):
    schema = api.get("/openapi.json").json()

    assert set(schema["paths"]) == ROUTES
    assert schema["components"]["schemas"]["Error"]["required"] == ["err"]
    add = schema["paths"]["/memory/add"]["post"]
    assert set(add["responses"]) >= {"200", "400", "401", "403", "413"}
    assert "201" not in add["responses"]  # stored or deduplicated, add answers 200
    assert "updated" in schema["components"]["schemas"]["UpdatedMemory"]["required"]
    error_ref = add["responses"]["400"]["content"]["application/json"]["schema"]["$ref"]
    assert error_ref == "#/components/schemas/Error"
    assert {"bearer", "apiKey"} <= set(schema["components"]["securitySchemes"])


def test_swagger_ui_is_served_from_local_static_files(api, client):
    page = api.get("/docs").content.decode()

    assert "https://" not in page  # no CDN: the page works offline
    script = "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"
    assert script in page
    assert client.get(script).status_code == 200


def test_schemathesis_finds_no_server_errors_and_only_err_bodies(deploy, tmp_path: Path):
    """Fuzzes every operation on a live gunicorn: no 5xx, every status documented, every
    body (errors included: `{"err"}`) matching the schema."""
    deployment = deploy()
    checks = "not_a_server_error,status_code_conformance,content_type_conformance,"
    checks += "response_schema_conformance"
    st = Path(sys.executable).with_name("st")
    if not st.exists():
        pytest.fail("schemathesis is not installed (pip install -e '.[dev]')")
    result = subprocess.run(
        [str(st), "run", f"{deployment.base_url}/openapi.json",
         "--header", f"Authorization: Bearer {API_KEY}", "--checks", checks,
         "--max-examples", "25", "--seed", "20261127", "--report-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "passed" in result.stdout
