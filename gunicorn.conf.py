"""Read by gunicorn from the working directory: the settings of openmemory/gunicorn_conf.py."""

from openmemory.gunicorn_conf import child_exit, logconfig_dict, on_exit, on_starting  # noqa: F401
