"""Django's secret key when DJANGO_SECRET_KEY is unset: generated once, kept in the data dir."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key

MIN_LENGTH = 50  # what `manage.py check --deploy` asks of a secret key


def stored_secret_key(path: Path) -> str:
    """The key kept in `path`, created (random, mode 0600) by the first process that needs it.
    gunicorn's workers start together, so the file is written aside and hard-linked into place:
    every process sees it whole or not at all, and all of them use the first one written."""
    try:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, aside = tempfile.mkstemp(dir=path.parent, prefix=".secret_key.")  # mode 0600
            try:
                with os.fdopen(fd, "w") as file:
                    file.write(get_random_secret_key())
                # Another process got there first: its key is the one.
                with contextlib.suppress(FileExistsError):
                    os.link(aside, path)
            finally:
                os.unlink(aside)
        key = path.read_text().strip()
    except OSError as exc:
        raise ImproperlyConfigured(
            f"DJANGO_SECRET_KEY is not set and {path} cannot be used ({exc}): "
            "set DJANGO_SECRET_KEY, or make OM_DATA_DIR writable"
        ) from None
    if len(key) < MIN_LENGTH:
        raise ImproperlyConfigured(
            f"{path} holds a secret key shorter than {MIN_LENGTH} characters: "
            "delete the file to have a new one generated, or set DJANGO_SECRET_KEY"
        )
    return key
