"""The real browser tests need: Debian's Chromium, installed by the tests themselves when missing.

``chromium()`` returns a Chrome/Chromium executable, installing the ``chromium`` package with
apt-get on a fresh CI machine (as root; a file lock keeps parallel test workers from running
apt twice). It returns None only where nothing can be installed, and tests skip with that reason.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from testfleet.reporting.coverage_plot import find_browser

_LOCK = Path(tempfile.gettempdir()) / "testfleet-chromium-install.lock"


def _apt(*args: str) -> bool:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        done = subprocess.run(["apt-get", *args], env=env, capture_output=True, timeout=900,
                              check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def chromium() -> str | None:
    found = find_browser()
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    with _LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one installer at a time across xdist workers
        found = find_browser()
        if found:
            return found
        install = ("install", "-y", "--no-install-recommends", "chromium")
        if not _apt(*install):
            _apt("update")
            _apt(*install)
    return find_browser()
