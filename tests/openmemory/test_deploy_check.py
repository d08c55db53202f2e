"""`manage.py check --deploy` is clean with the production settings README documents."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.live import ROOT

PRODUCTION = {
    "DJANGO_SECRET_KEY": "k3y-" + "x7Qp9" * 12,
    "OM_ALLOWED_HOSTS": "memory.example.com",
    "OM_HTTPS": "true",
    "OM_HSTS_INCLUDE_SUBDOMAINS": "true",
    "OM_HSTS_PRELOAD": "true",
    "OM_API_KEY": "a-long-random-admin-key",
    "OM_TRUSTED_PROXIES": "1",
}


def check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_the_deploy_check():
    result = check_deploy(PRODUCTION)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_a_generated_secret_key_passes_too(tmp_path):
    # One server alone may leave DJANGO_SECRET_KEY unset: it generates a strong one.
    result = check_deploy({**PRODUCTION, "DJANGO_SECRET_KEY": "", "OM_DATA_DIR": str(tmp_path)})

    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "secret_key").exists()


def test_the_development_defaults_do_not():
    result = check_deploy({"OM_HTTPS": "false"})

    assert result.returncode != 0
    assert "SECURE_SSL_REDIRECT" in result.stderr + result.stdout
