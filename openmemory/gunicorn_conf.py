"""gunicorn settings: Prometheus multiprocess mode for the workers' metrics, JSON logs.

Read by gunicorn from ./gunicorn.conf.py when started from the checkout (`make run`,
`gunicorn openmemory.wsgi`); elsewhere pass `-c python:openmemory.gunicorn_conf`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

# Each gunicorn worker is a process with counters of its own, and a scrape reaches one of
# them. prometheus_client's multiprocess mode has every worker write its values to files in
# PROMETHEUS_MULTIPROC_DIR, and /metrics (whichever worker answers) sums those files. The
# client reads the variable when a worker first imports it, so it is set here, in the master,
# whose environment the workers inherit (the app is not preloaded). Without a directory from
# the operator, each server gets a fresh one of its own and removes it at exit.
_OWN_DIRECTORY = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _OWN_DIRECTORY:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="om-metrics-")


def on_starting(server) -> None:
    # The client's rule: the directory is emptied before the workers start, or the counts of
    # an earlier run would be added to this one's.
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()


def child_exit(server, worker) -> None:
    # A dead worker's counters stay counted (counters never go down); this drops its live
    # gauges, as the client asks.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    if _OWN_DIRECTORY:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


# With OM_LOG_FORMAT=json gunicorn's own lines (start, worker boot and exit) are JSON too, and
# its access log is off: the app's request line (observability/middleware.py) replaces it.
# Empty, gunicorn keeps its own format.
logconfig_dict: dict = {}
if os.environ.get("OM_LOG_FORMAT", "").strip().lower() == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "core.logs.JsonFormatter"}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stdout",
            },
            "error_console": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            },
        },
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["error_console"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": False},
        },
    }
