"""The embedded scheduler: without a broker, server processes run beat's periodic tasks."""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable
from datetime import datetime

from celery import current_app
from django.conf import settings
from django.db import close_old_connections
from django.db.models import F
from django.utils import timezone

logger = logging.getLogger("openmemory")

_lock = threading.Lock()
_thread: threading.Thread | None = None
_wake = threading.Event()
_requested: queue.SimpleQueue[tuple[str, list, Callable[[], None] | None]] = queue.SimpleQueue()


def embedded() -> bool:
    """No broker: tasks run in the process that enqueues them, and no beat runs."""
    return bool(settings.CELERY_TASK_ALWAYS_EAGER)


def start() -> bool:
    """Starts this process's scheduler thread, once; the WSGI module calls it, so that only
    serving processes (every gunicorn worker, runserver) run one. Does nothing with a
    broker (beat schedules there) or with OM_EMBEDDED_SCHEDULER off. Returns whether the
    thread runs."""
    global _thread
    if not (embedded() and settings.OM_EMBEDDED_SCHEDULER):
        return False
    with _lock:
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_loop, name="openmemory-scheduler", daemon=True)
            _thread.start()
    return True


def running() -> bool:
    return _thread is not None and _thread.is_alive()


def run_soon(
    task_name: str, args: list | None = None, on_failure: Callable[[], None] | None = None
) -> None:
    """Runs a registered Celery task in the background of this process: handed to the
    scheduler's thread when one runs here, otherwise (management commands, tests,
    OM_EMBEDDED_SCHEDULER off) run right away by the caller. `on_failure` runs after the
    task failed (its retries included)."""
    if running():
        _requested.put((task_name, args or [], on_failure))
        _wake.set()
    else:
        _run_then(task_name, args or [], on_failure)


def send(
    task_name: str,
    args: list | None = None,
    *,
    countdown: float = 0.0,
    on_failure: Callable[[], None] | None = None,
) -> bool:
    """Hands a registered task to the background by name, to start `countdown` seconds from
    now: the embedded scheduler (run_soon) without a broker, a Celery worker through the
    broker otherwise. When the broker cannot be reached it logs that, runs `on_failure` and
    returns False; without a broker `on_failure` runs after the task failed (run_soon)."""
    if embedded():
        if countdown > 0 and running():
            timer = threading.Timer(countdown, run_soon, (task_name, args, on_failure))
            timer.daemon = True
            timer.start()
        else:
            run_soon(task_name, args, on_failure)
        return True
    try:
        current_app.send_task(task_name, args=args or [], countdown=countdown or None)
    except Exception as exc:  # kombu raises several types for an unreachable broker
        logger.warning("could not enqueue %s (%s); its periodic run will catch up", task_name, exc)
        if on_failure is not None:
            on_failure()
        return False
    return True


def _run_then(task_name: str, args: list, on_failure: Callable[[], None] | None) -> None:
    if not _run(task_name, args) and on_failure is not None:
        try:
            on_failure()
        except Exception:
            logger.exception("after the failure of %s, its clean-up failed too", task_name)


def run_due() -> list[str]:
    """Runs every enabled periodic task whose schedule is due; returns their names.

    Several processes (gunicorn workers) run this loop against one database. Each run is
    claimed first by moving the task's `last_run_at` forward only if it still holds the
    value this process read (a compare-and-set): of processes that saw the same due run,
    exactly one changes the row and runs it; the others see nothing updated and skip it.
    A process that dies mid-run loses that run; the next falls due one interval later, and
    every scheduled task is idempotent.
    """
    from django_celery_beat.models import PeriodicTask

    ran = []
    tasks = PeriodicTask.objects.filter(enabled=True).select_related(
        "interval", "crontab", "solar", "clocked"
    )
    for task in tasks:
        if _claim(task, timezone.now()):
            _run(task.task, json.loads(task.args or "[]"), json.loads(task.kwargs or "{}"))
            ran.append(task.name)
    return ran


def _claim(task, now: datetime) -> bool:
    from django_celery_beat.models import PeriodicTask

    rows = PeriodicTask.objects.filter(pk=task.pk)
    if task.last_run_at is None:
        # As beat does: a schedule's clock starts when it is first seen, and the first run
        # comes one interval later.
        rows.filter(last_run_at__isnull=True).update(last_run_at=now)
        return False
    if not task.schedule.is_due(task.last_run_at).is_due:
        return False
    claimed = rows.filter(last_run_at=task.last_run_at).update(
        last_run_at=now,
        total_run_count=F("total_run_count") + 1,
        enabled=not task.one_off,
    )
    return claimed == 1


def _run(task_name: str, args: list | None = None, kwargs: dict | None = None) -> bool:
    """Runs the task here, through Celery (so its retry policy applies), and logs a failure
    rather than raising: a scheduled run that fails is tried again at the next one."""
    # The project's Celery app (openmemory/celery.py makes it the default of every thread).
    app = current_app
    if task_name not in app.tasks:
        # A server process imports task modules only as it uses them (a worker imports every
        # app's tasks at start): do what the worker does.
        app.loader.import_default_modules()
    task = app.tasks.get(task_name)
    if task is None:
        logger.warning("scheduled task %s is not a registered task; skipped", task_name)
        return False
    try:
        return not task.apply(args=args or [], kwargs=kwargs or {}).failed()
    except Exception:
        logger.exception("scheduled task %s failed; it runs again at its next time", task_name)
        return False


def _loop() -> None:
    while True:
        _wake.wait(settings.OM_SCHEDULER_POLL_SECONDS)
        _wake.clear()
        # This thread is no request: Django does not recycle its connection, so it does
        # (and a connection broken by a database restart is dropped, not reused forever).
        close_old_connections()
        try:
            while not _requested.empty():
                _run_then(*_requested.get_nowait())
            run_due()
        except Exception:
            logger.exception("embedded scheduler: this round failed; the next one retries")
        finally:
            close_old_connections()
