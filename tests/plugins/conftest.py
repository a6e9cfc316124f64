"""The example plugin installed as a user would (``pip install``, into a folder of its own), and
small hand-made distributions for the error cases: importlib.metadata finds both the same way.

``pip install --target`` builds in the source tree, so the example is copied first: the
checkout stays clean and parallel sessions do not share a build folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from testfleet.plugins import manager

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "testfleet-plugin-example"
SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="session")
def example_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the installed example plugin (its package and its .dist-info)."""
    root = tmp_path_factory.mktemp("example")
    source = root / "source"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    site = root / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
                           "--no-index", "--disable-pip-version-check", "-q", "--target", str(site),
                           str(source)], capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return site


def env_with(*folders: Path) -> dict[str, str]:
    """PYTHONPATH for a child process: ``folders`` (plugins' install folders), then this src."""
    path = os.pathsep.join([*map(str, folders), str(SRC)])
    return {"PYTHONPATH": path}


def make_dist(site: Path, dist: str, module: str, source: str, *, entry: str | None = None) -> Path:
    """A minimal installed distribution in ``site``: module ``module`` with ``source`` and an
    entry point ``entry`` (default: the module's name) in the group ``testfleet``."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[testfleet]\n{entry or module} = {module}\n")
    return site


@pytest.fixture
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process registry rebuilt for this test (and forgotten after it), with the sys.path
    the test sets up."""
    manager.reset()
    yield
    manager.reset()
    for name in [m for m in sys.modules if m.startswith("tfplug_")]:
        del sys.modules[name]
