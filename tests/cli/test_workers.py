"""``testfleet workers`` on the local backend: what a user sees of this machine."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path


def test_workers_shows_this_machine_with_its_offered_resources_and_labels(tmp_path: Path) -> None:
    (tmp_path / "testfleet.toml").write_text('resources = { licence = 2.0 }\nlabels = { zone = "eu" }\n')
    proc = subprocess.run([sys.executable, "-m", "testfleet", "workers"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    row = next(line for line in proc.stdout.splitlines() if platform.node() in line)
    assert f" {len(os.sched_getaffinity(0))} " in row
    assert platform.python_version() in row
    assert "licence=2" in row and "zone=eu" in row


def test_workers_refuses_a_bad_settings_file(tmp_path: Path) -> None:
    (tmp_path / "testfleet.toml").write_text('backend = "kubernetes"\n')
    proc = subprocess.run([sys.executable, "-m", "testfleet", "workers"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2
    assert "testfleet.toml" in proc.stderr and "backend" in proc.stderr
