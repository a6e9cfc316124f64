"""The dashboard page: ``GET /`` (the page), ``GET /static/{name}`` (its script and style, shipped
in the package under ``service/static/``) and ``GET /static/plotly.min.js`` (the copy of plotly.js
inside the installed ``plotly`` Python package, so the page never reaches the network and nothing
is built at install time).

The page itself is static: it reads the run's state from the WebSocket event stream and the REST
endpoints (see :mod:`testfleet.service`), so these routes only hand out files. They are left out
of the OpenAPI document: they are not part of the API.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from testfleet.service.errors import ApiError

__all__ = ["router", "static_dir", "plotly_js"]

router = APIRouter()

#: what each shipped file is served as (anything else under static/ is not served)
_MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8"}


def static_dir() -> Path:
    return Path(str(resources.files("testfleet.service") / "static"))


def plotly_js() -> Path | None:
    """plotly.js as shipped inside the ``plotly`` Python package, or None without plotly."""
    try:
        import plotly
    except ImportError:
        return None
    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    return path if path.is_file() else None


@router.get("/", include_in_schema=False)
def dashboard() -> FileResponse:
    return FileResponse(static_dir() / "index.html", media_type=_MEDIA_TYPES[".html"],
                        headers={"Cache-Control": "no-cache"})


@router.get("/static/{name}", include_in_schema=False)
def static_file(name: str) -> FileResponse:
    if name == "plotly.min.js":
        path = plotly_js()
        if path is None:
            raise ApiError(404, "plotly.js is not installed on the server (pip install plotly)",
                           source="static", place=name, expected="the plotly Python package")
        # the file changes only with the plotly package: let the browser keep it
        return FileResponse(path, media_type=_MEDIA_TYPES[".js"],
                            headers={"Cache-Control": "public, max-age=86400"})
    path = static_dir() / name
    suffix = Path(name).suffix
    # a bare file name: no separators, so nothing outside static/ can be named
    if "/" in name or "\\" in name or name.startswith(".") or suffix not in _MEDIA_TYPES or not path.is_file():
        raise ApiError(404, f"no static file {name!r}", source="static", place=name,
                       expected=", ".join(sorted(p.name for p in static_dir().iterdir()
                                                 if p.suffix in _MEDIA_TYPES)))
    return FileResponse(path, media_type=_MEDIA_TYPES[suffix], headers={"Cache-Control": "no-cache"})
