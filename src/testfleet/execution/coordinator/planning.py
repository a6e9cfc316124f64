"""From the collection to the plan: which items run, in which pool, and what is decided unrun.

``plan_run`` reads the collector's :class:`~testfleet.execution.protocol.Collection` into the
coordinator's items, cases and variants, applies ``--lf``, routes tests with requirements to a
pool (or records them skipped, or errors with --strict-requirements, when no worker can meet
them), begins the run in the store, builds the :class:`~testfleet.execution.scheduler.Scheduler`
and starts the workers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from testfleet.execution.scheduler import Scheduler
from testfleet.execution.stream import Collected, TerminalOptions
from testfleet.execution.worker_items import with_sut_space
from testfleet.model import Case, Outcome, Variant

if TYPE_CHECKING:
    from testfleet.execution import protocol as P
    from testfleet.execution.coordinator.interfaces import Host


def plan_run(host: Host, payload: P.Collection) -> bool:
    """Read the collection; False when nothing is to run (the run then ends)."""
    plan, run_info = host.plan, host.run_info
    host.collected_items = payload["items"]  # as the workers collected them, to compare
    # a test that runs against the SUT explores the instance's config too (dimensions sut.*)
    sut_space = plan.worker.sut_space
    host.items = [{**item, "space": with_sut_space(item["space"], sut_space)}
                  if sut_space is not None and item.get("uses_instance") else dict(item)
                  for item in payload["items"]]
    host.collect_errors = list(payload["errors"])
    host.warnings.extend(payload["warnings"])
    run_info.collected = len(host.items)  # selected; deselected is counted apart
    run_info.deselected = payload["deselected"]
    run_info.rootdir = payload["rootdir"]
    nodeids = [item["nodeid"] for item in host.items]
    host.cases = [Case.from_nodeid(i["nodeid"], file=i["file"], line=i["line"], name=i["name"],
                                   markers=i["markers"]) for i in host.items]
    # a parametrized test's callspec is its baseline variant's parameters
    host.variants = [Variant.of(case, item.get("params") or {})
                     for case, item in zip(host.cases, host.items, strict=True)]
    selected: Sequence[int] = range(len(nodeids))
    if plan.only_last_failed:
        previously = [i for i, n in enumerate(nodeids) if n in plan.last_failed]
        if previously:
            host.say(f"run-last-failure: rerun previous {len(previously)} failure"
                     f"{'s' if len(previously) != 1 else ''}")
            run_info.deselected += len(nodeids) - len(previously)
            selected = previously
        else:
            host.say("run-last-failure: no previously failed tests, not deselecting items.")
    if plan.resume is not None:  # --resume: what has a final result already is not run again
        from testfleet.execution.coordinator.resuming import resume

        selected = resume(host, plan.resume, nodeids, selected, payload["skipped"])
    pools, unmet = requirements(host, list(selected))
    host.selected = [i for i in selected if i not in unmet]
    host.total = len(host.selected)
    skipped_modules = [collect_skip(host, entry) for entry in payload["skipped"]]
    for index, reason in unmet.items():
        unmet_requirement(host, index, reason)
    host.recorder.begin_run(run_info, host.cases + [c for c, _ in skipped_modules],
                            host.variants + [v for _, v in skipped_modules])
    if host.collect_errors and not plan.continue_on_collection_errors:
        return False
    if payload["terminal"]:  # -r, -q as pytest saw them
        host.bus.publish(TerminalOptions(payload["terminal"]))
    host.bus.publish(Collected(host.total + len(unmet), run_info.deselected, plan.workers))
    if unmet:
        word = "errors" if plan.strict_requirements else "skipped"
        host.say(f"{len(unmet)} test{'s' if len(unmet) != 1 else ''} {word}: no worker meets "
                 f"{'their' if len(unmet) != 1 else 'its'} requirements")
    if not host.total:
        return False
    host.scheduler = Scheduler(nodeids, workers=plan.workers, dist=plan.dist,
                               history=plan.history, failed=plan.last_failed,
                               failed_first=plan.failed_first, order=host.selected, pools=pools)
    if host.exploration is not None:
        host.exploration.register(host.selected)
    fleet = host.fleet
    if not host.backend.workers_collect:  # workers come from the collected session
        # more workers than tests would only sit idle (exploration makes its own work)
        for _ in range(plan.workers if host.exploration is not None else min(plan.workers, host.total)):
            fleet.spawn()
    for pool in host.scheduler.pool_names:
        if pool:  # one worker made to measure for each set of requirements
            fleet.spawn(pool)
    for slot in fleet.slots.values():
        if slot.ready:
            fleet.feed(slot)
    return True


def requirements(host: Host, selected: list[int]) -> tuple[list[str], dict[int, str]]:
    """Each test's pool, and the tests no worker can satisfy (index -> reason)."""
    from fnmatch import fnmatch

    from testfleet.execution.capabilities import Requirements, skip_reason

    rules = [(pattern, Requirements.from_marker_kwargs(kwargs, where=f"requirements[{pattern!r}]"))
             for pattern, kwargs in host.plan.requirement_rules]
    pools = [""] * len(host.items)
    unmet: dict[int, str] = {}
    wanted: dict[int, Requirements] = {}
    offered = None
    for index in selected:
        item = host.items[index]
        needed = Requirements.from_marker_kwargs(item.get("requires") or {}, where=item["nodeid"])
        for pattern, rule in rules:
            if fnmatch(item["nodeid"], pattern) or fnmatch(item["file"], pattern):
                needed = needed.merge(rule, where=item["nodeid"])
        if needed.is_empty:
            continue
        offered = host.backend.capabilities() if offered is None else offered
        reason = skip_reason(needed, offered) if offered else None
        if reason:
            unmet[index] = reason
            wanted[index] = needed
        elif host.backend.routes_requirements:
            pools[index] = needed.key()
            host.backend.define_pool(needed.key(), needed)
    if unmet and host.backend.routes_requirements:  # Ray: ask the autoscaler, wait a bounded time
        from testfleet.execution.coordinator.handing import await_capacity

        unmet = await_capacity(host, wanted, unmet, pools)
    return pools, unmet


def unmet_requirement(host: Host, index: int, reason: str) -> None:
    """A test no worker can run: skipped with the reason, or an error with --strict-requirements."""
    outcome = Outcome.error if host.plan.strict_requirements else Outcome.skipped
    item = host.items[index]
    host.recording.record_synthetic(host.cases[index], host.variants[index], outcome, worker="scheduler",
                                    when="setup", message=reason, longrepr=reason, line=item["line"])


def collect_skip(host: Host, entry: dict[str, Any]) -> tuple[Case, Variant]:
    """A module skipped at collection (``allow_module_level``): pytest counts it as skipped."""
    case = Case.from_nodeid(entry["nodeid"], file=entry["nodeid"].split("::", 1)[0])
    variant = Variant.of(case)
    host.recording.record_synthetic(case, variant, Outcome.skipped, worker="collector", when="collect",
                                    message=entry["message"], longrepr=entry["longrepr"])
    return case, variant
