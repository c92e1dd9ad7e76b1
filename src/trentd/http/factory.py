"""Entry point for uvicorn worker processes (``--workers N``): each opens the data dir that the
parent already initialised, from the settings the parent put in the environment."""

from __future__ import annotations

import os

from .. import logs
from ..runtime import Settings, open_runtime
from .app import TrentApp


def app_from_env() -> TrentApp:
    # A spawned worker inherits the environment but not the parent's logging setup.
    settings = Settings.from_json(os.environ["TRENTD_SETTINGS_JSON"])
    logs.setup(settings.log_format, os.environ.get("TRENTD_LOG_LEVEL", "info"))
    return TrentApp(open_runtime(settings, announce=lambda text: None))
