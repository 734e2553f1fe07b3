"""The API: FastAPI REST endpoints and a WebSocket over the Redis streams (``cif api``).

``create_app(config)`` builds the app (:mod:`cif.api.app`); ``serve(config, stop_event)``
runs it with uvicorn inside an existing event loop (:mod:`cif.api.server`).
"""

from cif.api.app import ApiConfig, Scorer, create_app

__all__ = ["ApiConfig", "Scorer", "create_app"]
