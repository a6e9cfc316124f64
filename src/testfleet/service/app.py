"""The FastAPI application of ``testfleet serve``: the read API, the runs API and its WebSockets,
the dashboard page, the JSON errors and the token check, over one :class:`ServiceState`."""

from __future__ import annotations

from fastapi import FastAPI

from testfleet.service.errors import install_error_handlers
from testfleet.service.state import ServiceState

__all__ = ["create_app"]


def create_app(state: ServiceState) -> FastAPI:
    from testfleet import __version__
    from testfleet.service.api_read import router as read_router
    from testfleet.service.api_runs import router as runs_router
    from testfleet.service.auth import install as install_auth
    from testfleet.service.pages import router as pages_router

    app = FastAPI(title="testfleet", version=__version__,
                  description="Submit test runs to a testfleet coordinator, follow them live, "
                              "and read their results, telemetry, coverage and analysis.")
    app.state.service = state
    install_error_handlers(app)
    install_auth(app)
    app.include_router(runs_router)
    app.include_router(read_router)
    app.include_router(pages_router)
    return app
