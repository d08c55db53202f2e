"""The Celery application; without CELERY_BROKER_URL tasks run in-process (eager)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "openmemory.settings")

app = Celery("openmemory")
# The default in every thread, so that code below the project (core/scheduler.py, run from
# its own thread) reaches it as celery.current_app without importing this module.
app.set_default()
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
