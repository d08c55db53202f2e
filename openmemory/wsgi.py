"""WSGI entry point for gunicorn; warns when the API runs without a key, starts the scheduler."""

import gc
import logging
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "openmemory.settings")

django_application = get_wsgi_application()

# Imported once Django is set up: the middleware's module loads DRF, which loads the
# authentication classes named in the settings, and with them access's models.
from django.conf import settings  # noqa: E402

from core.middleware import ChunkedBodyMiddleware  # noqa: E402

# Below Django: Django reads no body that comes without a Content-Length (chunked).
application = ChunkedBodyMiddleware(django_application)

if not settings.OM_API_KEYS:
    logging.getLogger("openmemory").warning(
        "\n%s\nOM_API_KEY is not set: the API is OPEN to anyone who can reach it.\n"
        "Set OM_API_KEY=<key>[,<key>...] before exposing this server.\n%s",
        "!" * 72,
        "!" * 72,
    )

# Without a broker no beat runs: this serving process runs the periodic tasks itself.
from core import scheduler  # noqa: E402
from memories.tasks import reembed_memories  # noqa: E402

# After a change of OM_EMBEDDINGS, memories of the old model are re-embedded in the background
# (found by their words meanwhile; progress in the log and /health): here by the scheduler
# thread, with a broker by the workers as they start (memories/tasks.py).
if scheduler.start():
    scheduler.run_soon(reembed_memories.name)

# On SQLite, this process checkpoints the WAL in a thread, so that commits need not.
from core import wal  # noqa: E402

wal.start()

# What the process loaded up to here (Django, DRF, numpy, the apps: about 100k objects) lives
# as long as it does. Frozen, the cyclic collector's full passes skip it; otherwise each one
# walks it all (measured: 140-340 ms on a busy 2-core machine) inside whichever request
# happens to trigger it.
gc.freeze()
