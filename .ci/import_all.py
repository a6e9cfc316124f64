"""Import every module of the installed testfleet package; exit 1 naming each that fails.

Run by .ci/run in a fresh virtual environment with no extras installed, so a module that imports
something only an extra provides (at module level) fails CI. Modules that need an extra by design
import it inside the function that uses it; those are listed in OPTIONAL and skipped here.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import traceback

import testfleet

# the modules whose whole purpose is an extra (they import it at the top, and are only imported
# when the user asked for that extra)
OPTIONAL = {"testfleet.execution.backends.ray"}
# importing it runs the CLI
SKIPPED = OPTIONAL | {"testfleet.__main__"}


def main() -> int:
    failed: list[str] = []
    names = sorted(info.name for info in pkgutil.walk_packages(testfleet.__path__, "testfleet."))
    for name in names:
        if name in SKIPPED:
            continue
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - every failure is reported, then CI fails
            failed.append(name)
            print(f"cannot import {name} with the base dependencies:", file=sys.stderr)
            traceback.print_exc()
    skipped = len(SKIPPED & set(names))
    print(f"imported {len(names) - len(failed) - skipped} of {len(names)} modules ({skipped} skipped: "
          "optional or a script)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
