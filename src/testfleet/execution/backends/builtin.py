"""The built-in backends, registered through the plugin hook ``testfleet_add_backends``:
``local`` (worker subprocesses) and ``ray`` (Ray actors, when Ray is installed).

A factory takes ``(settings, pytest_args, workers, cwd, env)``, as a plugin's does; ``env`` is
added to the workers' environment (``--chaos``), or None.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from testfleet.errors import UsageError
from testfleet.plugins import hookimpl

__all__ = ["keep_local_ray_on_loopback", "testfleet_add_backends"]


def keep_local_ray_on_loopback(address: str | None) -> None:
    """A Ray instance testfleet starts itself stays on 127.0.0.1: Ray otherwise swaps loopback for
    the machine's outward address. Ray reads this switch when it is imported, so call it first;
    the Ray processes started here inherit it."""
    if not address or address.split("://", 1)[-1].startswith(("127.", "localhost")):
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


def local_backend(settings: Any, pytest_args: list[str], workers: int, cwd: Path,
                  env: dict[str, str] | None = None) -> Any:
    from testfleet.execution.backends.local import LocalBackend

    return LocalBackend(pytest_args, workers=workers, start_method=settings.start_method, cwd=cwd,
                        offers={"resources": settings.resources, "labels": settings.labels}, env=env)


def ray_backend(settings: Any, pytest_args: list[str], workers: int, cwd: Path,
                env: dict[str, str] | None = None) -> Any:
    keep_local_ray_on_loopback(settings.ray_address)
    try:
        from testfleet.execution.backends.ray import RayBackend
    except ImportError:
        raise UsageError("the Ray backend needs Ray: pip install 'testfleet[ray]'",
                         place="--backend ray") from None
    store = Path(settings.store).resolve()
    excludes = [f"/{store.relative_to(cwd.resolve())}*"] if store.is_relative_to(cwd.resolve()) else []
    return RayBackend(pytest_args, workers=workers, address=settings.ray_address, cwd=cwd,
                      pip=settings.ray_pip, env=dict(settings.ray_env) | (env or {}), excludes=excludes)


@hookimpl
def testfleet_add_backends() -> dict[str, Any]:
    return {"local": local_backend, "ray": ray_backend}
