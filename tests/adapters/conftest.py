"""The bundled inventory service as a real process on a free port of 127.0.0.1, for the scenario
tests: ``base_url`` (module-scoped fixture) and ``serve(script)`` for another server script that
prints its port first, as the example's servers do."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "inventory"


def serve(script: Path) -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, str(script), "--port", "0", "--host", "127.0.0.1"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().strip())
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    yield from serve(EXAMPLE / "inventory_service.py")
