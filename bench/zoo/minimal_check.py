"""pytest plugin of ``bench/zoo/minimal_score.py`` (``-p minimal_check``, bench/zoo on
PYTHONPATH): re-runs each minimised variant and every variant one simplification step away from
it, to check *by execution* that the minimum is 1-minimal: the minimal variant still shows its
defect, and no single step does. It never changes what a test checks.

The steps (:func:`single_steps`), each toward the case's baseline (the space's own):

- any changed parameter set back to its baseline value;
- an integer (or a float with a step) one grid step nearer the baseline; a float without a step
  nearer by the minimiser's tolerance (``max(1e-9, 1e-6 * range)``);
- a text with one character deleted, or one character that is not a plain letter or digit
  replaced by ``a`` (``0`` where the space refuses ``a``);
- a list with one element removed (never below the baseline's length, nor below one);
- an order with one of the baseline's items swapped back into its place.

Steps outside the space are not run (the test could not take them). Environment:
``MIN_CHECK_IN`` (JSON list of ``{id, case, minimal}``) and ``MIN_CHECK_OUT`` (JSON lines:
``id``, ``step`` (``minimal`` or what the step did), ``params``, ``outcome``, ``markers``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from zoo_harness import _space, case_of, markers_in

PLAIN = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def _dim(space: Any, name: str) -> Any:
    from testfleet.space.composite import Optional

    dim = space.dimensions.get(name)
    while isinstance(dim, Optional):
        dim = dim.inner
    return dim


def _numeric_step(dim: Any, old: Any, new: Any) -> Any:
    from testfleet.space.dimensions import Float, Int

    toward = -1 if new > old else 1
    if isinstance(dim, Int):
        return new + toward * dim.step
    if isinstance(dim, Float):
        step = dim.step or max(1e-9, 1e-6 * (dim.max - dim.min))
        nearer = new + toward * step
        return old if (nearer - old) * (new - old) <= 0 else nearer
    return None


def single_steps(space: Any, baseline: dict[str, Any], params: dict[str, Any]
                 ) -> Iterator[tuple[str, dict[str, Any]]]:
    """(what the step did, the variant one simplification step from ``params``)."""
    from testfleet.space.composite import Permutation
    from testfleet.space.text import String

    for name, new in params.items():
        old = baseline.get(name)
        if name not in space.dimensions or new == old:
            continue
        yield f"{name} back to baseline", {**params, name: old}
        dim = _dim(space, name)
        if isinstance(new, (int, float)) and not isinstance(new, bool) and isinstance(old, (int, float)):
            nearer = _numeric_step(dim, old, new)
            if nearer is not None and nearer != old:
                yield f"{name} one step nearer", {**params, name: nearer}
        elif isinstance(new, str) and (dim is None or isinstance(dim, String)):  # not a choice's name
            for i in range(len(new)):
                yield f"{name} without character {i}", {**params, name: new[:i] + new[i + 1:]}
                if new[i] not in PLAIN:
                    for plain in ("a", "0"):
                        candidate = {**params, name: new[:i] + plain + new[i + 1:]}
                        if space.is_valid(candidate):
                            yield f"{name} character {i} made plain", candidate
                            break
        elif isinstance(new, list) and isinstance(old, list):
            if isinstance(dim, Permutation) or sorted(map(repr, new)) == sorted(map(repr, old)):
                for i, item in enumerate(old):
                    if new[i] != item and item in new:
                        j = new.index(item)
                        swapped = list(new)
                        swapped[i], swapped[j] = swapped[j], swapped[i]
                        yield f"{name}: {item!r} back in place {i}", {**params, name: swapped}
            elif len(new) > max(len(old), 1):
                for i in range(len(new)):
                    yield f"{name} without element {i}", {**params, name: new[:i] + new[i + 1:]}


class MinimalCheck:
    def __init__(self) -> None:
        self.wanted: list[dict[str, Any]] = json.loads(os.environ["MIN_CHECK_IN"])
        self.out = Path(os.environ["MIN_CHECK_OUT"])
        self.reports: list[pytest.TestReport] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.reports.append(report)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool | None:
        if session.config.option.collectonly:
            return None
        items = {case_of(i.nodeid): i for i in session.items}
        for want in self.wanted:
            item = items.get(want["case"])
            if item is None:
                continue
            space = _space(item)
            baseline = space.baseline()
            minimal = {k: v for k, v in want["minimal"].items() if k in space.dimensions}
            points = [("minimal", minimal)]
            seen = {json.dumps(minimal, sort_keys=True)}
            for step, params in single_steps(space, baseline, minimal):
                key = json.dumps(params, sort_keys=True)
                if key not in seen and space.is_valid(params):
                    seen.add(key)
                    points.append((step, params))
            for step, params in points:
                outcome, markers = self.execute(item, params)
                with self.out.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps({"id": want["id"], "step": step, "params": params,
                                         "outcome": outcome, "markers": markers}) + "\n")
        session._setupstate.teardown_exact(None)
        return True

    def execute(self, item: pytest.Item, params: dict[str, Any]) -> tuple[str, list[str]]:
        from testfleet.execution.worker_items import configure_instance, swap_params
        from testfleet.execution.worker_results import crash_message

        self.reports = []
        saved = swap_params(item, params)
        try:
            configure_instance(item, params)
            item.ihook.pytest_runtest_protocol(item=item, nextitem=item.parent)
        finally:
            if saved is not None:
                saved.restore()
        failed = [r for r in self.reports if r.failed]
        text = "\n".join(crash_message(r) + "\n" + str(r.longrepr) for r in failed)
        return ("failed" if failed else "passed"), markers_in(text)


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("MIN_CHECK_IN"):
        config.pluginmanager.register(MinimalCheck(), "minimal-check")
