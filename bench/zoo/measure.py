"""``bench/exploration.py --zoo``: executions until each zoo defect is first found, per method,
over seeds, for the tuning half and the held-out half (see bench/README.md, "The zoo").

Methods, all through pytest with the system's own suite and SUT (``[tool.testfleet.sut]``):

- ``explore``: ``testfleet run CASES --workers 1 --explore B*cases --explore-per-case B --seed S``
  in the system's directory (one store per run), the ground truth's cases named so that tests
  with no defect of their own take no share; its explored executions (origin neither baseline
  nor minimize; every attempt, a replication's replays too) in result order.
- ``explore-notel``: the same with ``--telemetry-interval 0``.
- ``explore-nospec``: the same with ``--no-specialise`` (what specialisation, on by default
  during ``--explore``, changes).
- ``random``: ``random_points(space, B, seed=S)`` of each test's space (with the SUT's config
  space), run by ``zoo_harness`` the way a worker runs a variant.
- ``hypothesis``: one ``@given`` run per test over the same space, ``@seed(S)``, ``max_examples=B``.

Once a case met every defect it can meet, its executions stop (random, hypothesis) or are
skipped before their setup, with no SUT restart (explore; the run stops once every case is
finished): what comes after enters no figure. An execution that runs over ``timeout`` seconds is
interrupted and counts as one that found nothing (random, hypothesis: ``ZOO_TIMEOUT``; explore:
``testfleet run --timeout``).

The (seed, system, method) jobs are independent: ``jobs`` of them run at once, each a process
of its own with its own store, output file and pytest basetemp; the figures do not depend on
``jobs`` (only the wall time does). Each job's CPU seconds (its process tree, from wait4) are
reported too, since wall seconds on a shared machine say little.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ZOO = Path(__file__).resolve().parent
sys.path.insert(0, str(ZOO))

from scoring import Defect, System, first_finds, load_truth, score_analysis, stop_sets  # noqa: E402
from zoo_harness import case_of, markers_in  # noqa: E402

METHODS = ("explore", "random", "hypothesis", "explore-notel", "explore-nospec")
RUN_TIMEOUT = 1800
STALL_S = 180.0


def _log(text: str) -> None:
    print(text, flush=True)


def _env(method: str, seed: int, budget: int, out: Path, stop: dict[str, list[str]],
         timeout: float) -> dict[str, str]:
    path = os.pathsep.join([str(ZOO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {**os.environ, "PYTHONPATH": path, "ZOO_METHOD": method.split("-")[0],
            "ZOO_SEED": str(seed), "ZOO_BUDGET": str(budget), "ZOO_OUT": str(out),
            "ZOO_STOP": json.dumps(stop), "ZOO_TIMEOUT": str(timeout), "TESTFLEET_SEED": str(seed)}


@dataclass
class Ran:
    returncode: int
    output: str
    cpu_s: float  # user + system seconds of the process and the descendants it waited for
    stalled: bool = False


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


def _run(cmd: list[str], cwd: Path, env: dict[str, str], log: Path, watch: Path) -> Ran:
    """Run ``cmd`` (its own process group, output to ``log``) and take its rusage with wait4.
    A run whose output and ``watch`` file stop growing for STALL_S seconds (a stalled run, not a
    slow test: those have their own timeout) or that passes RUN_TIMEOUT is interrupted (SIGINT,
    then SIGKILL): what it recorded so far still counts, the rest of its budget found nothing."""
    with log.open("wb") as fh:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    start = last = time.monotonic()
    sizes = (-1, -1)
    stalled = False
    signalled: float | None = None
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        time.sleep(1.0)
        now = time.monotonic()
        if (new := (_size(log), _size(watch))) != sizes:
            sizes, last = new, now
        if signalled is None and (now - last > STALL_S or now - start > RUN_TIMEOUT):
            stalled, signalled = True, now
            os.killpg(proc.pid, signal.SIGINT)
        elif signalled is not None and now - signalled > 30:
            os.killpg(proc.pid, signal.SIGKILL)
    code = os.waitstatus_to_exitcode(status)
    return Ran(code, log.read_text(encoding="utf-8", errors="replace"), usage.ru_utime + usage.ru_stime,
               stalled)


def run_harness(system: System, method: str, seed: int, budget: int, work: Path,
                stop: dict[str, list[str]], timeout: float) -> tuple[list[dict[str, Any]], float]:
    name = f"{system.name}-{method}-{seed}"
    out = work / f"{name}.jsonl"
    ran = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "zoo_harness",
                "--basetemp", str(work / f"{name}.tmp"),
                "-W", "ignore::pytest.PytestUnhandledThreadExceptionWarning"],
               system.path, _env(method, seed, budget, out, stop, timeout), work / f"{name}.log", out)
    if not ran.stalled and (ran.returncode not in (0, 1) or not out.exists()):
        raise RuntimeError(f"{system.name} {method}: pytest exited {ran.returncode}\n{ran.output[-3000:]}")
    lines = out.read_text(encoding="utf-8").splitlines() if out.exists() else []
    rows = [json.loads(line) for line in lines if line.endswith("}")]
    return rows + ([{"case": "", "outcome": "stalled", "markers": []}] if ran.stalled else []), ran.cpu_s


def run_explore(system: System, method: str, seed: int, budget: int, work: Path,
                stop: dict[str, list[str]], ruleset: str | None, timeout: float
                ) -> tuple[list[dict[str, Any]], Path, float]:
    name = f"{system.name}-{method}-{seed}"
    store = work / f"{name}.duckdb"
    out = work / f"{name}.jsonl"
    # only the listed tests, as random and hypothesis: a test that merely uses the SUT would
    # otherwise take a share of the budget (it has the SUT's config space) from the cases
    cmd = [sys.executable, "-m", "testfleet", "run", *system.cases, "--workers", "1", "--explore",
           str(budget * len(system.cases)), "--explore-per-case", str(budget), "--seed", str(seed),
           "--store", str(store), "--timeout", str(timeout), "-q"]
    if method == "explore-notel":
        cmd += ["--telemetry-interval", "0"]
    if method == "explore-nospec":
        cmd += ["--no-specialise"]
    if ruleset:
        cmd += ["--ruleset", ruleset]
    cmd += ["--", "-p", "zoo_harness", "--basetemp", str(work / f"{name}.tmp"),
            "-W", "ignore::pytest.PytestUnhandledThreadExceptionWarning"]
    ran = _run(cmd, system.path, _env(method, seed, budget, out, stop, timeout), work / f"{name}.log", out)
    if ran.returncode not in (0, 1) and not ran.stalled:
        raise RuntimeError(f"{system.name} {method}: testfleet run exited {ran.returncode}\n"
                           f"{ran.output[-3000:]}")
    rows = explored_rows(store)
    return rows + ([{"case": "", "outcome": "stalled", "markers": []}] if ran.stalled else []), store, ran.cpu_s


def explored_rows(store: Path) -> list[dict[str, Any]]:
    """The explored executions of the last run in ``store``, in result order: every attempt, final
    or not (a replication's replays of a failure too), for each is an execution the run spent
    and the harness stops a case on whichever of them meets its last defect (it records them
    all); only the baseline and minimisation are left out."""
    from testfleet.store.db import Store

    with Store.open(store, read_only=True) as db:
        run_id = db.get_run("last").run_id
        found = db.query("SELECT r.nodeid, r.outcome, r.message, r.longrepr FROM results r "
                         "JOIN variants v USING (variant_id) WHERE r.run_id = $1 "
                         "AND v.origin NOT IN ('baseline', 'minimize') ORDER BY r.rowid", [run_id])
    return [{"case": case_of(nodeid), "outcome": outcome,
             "markers": markers_in(f"{message}\n{longrepr}") if outcome != "passed" else []}
            for nodeid, outcome, message, longrepr in found]


def analysis_of(store: Path, system: System, defects: list[Defect]) -> list[dict[str, Any]]:
    """score_analysis for each defect of ``system`` found in the run stored in ``store``."""
    from testfleet.analysis.dataset import _DECIDED, load_frame
    from testfleet.store.db import Store

    with Store.open(store, read_only=True) as db:
        run = db.get_run("last")
        frame = load_frame(db, [run])
        texts = db.query("SELECT nodeid, message || chr(10) || longrepr FROM results WHERE run_id = $1 "
                         "AND final AND outcome IN (SELECT unnest($2::VARCHAR[])) ORDER BY rowid",
                         [run.run_id, list(_DECIDED)])
    cases = [case_of(n) for n, _ in texts]
    return [score_analysis(frame, cases, [t for _, t in texts], d) for d in defects
            if any(d.marker in (t or "") for _, t in texts)]


@dataclass
class Job:
    seed: int
    system: System
    method: str
    wall_s: float = 0.0
    cpu_s: float = 0.0
    rows: list[dict[str, Any]] | None = None
    analyses: list[dict[str, Any]] | None = None
    error: str | None = None
    reused: bool = False  # taken from a result file of an earlier bench in the same --work


def _do(job: Job, budget: int, work: Path, ruleset: str | None, analysis: bool, timeout: float,
        defects: list[Defect], run: bool = True) -> Job:
    """Run ``job``, or take its result from ``work`` when a run with the same settings left one
    there (``--work DIR`` reused); with ``run`` false only the latter."""
    mine = [d for d in defects if d.system == job.system.name]
    stop = stop_sets(job.system, mine)
    saved = work / f"{job.system.name}-{job.method}-{job.seed}.result.json"
    key = {"budget": budget, "ruleset": ruleset, "timeout": timeout, "stop": stop}
    if saved.exists():
        data = json.loads(saved.read_text(encoding="utf-8"))
        if data["key"] == key and (data["analyses"] is not None or not analysis or job.method != "explore"):
            job.rows, job.cpu_s, job.wall_s = data["rows"], data["cpu_s"], data["wall_s"]
            job.analyses = data["analyses"]
            job.reused = True
            return job
    if not run:
        return job
    start = time.perf_counter()
    try:
        if job.method.startswith("explore"):
            job.rows, store, job.cpu_s = run_explore(job.system, job.method, job.seed, budget, work,
                                                     stop, ruleset, timeout)
            if analysis and job.method == "explore":
                job.analyses = [{"seed": job.seed, "system": job.system.name, **scored}
                                for scored in analysis_of(store, job.system, mine)]
        else:
            job.rows, job.cpu_s = run_harness(job.system, job.method, job.seed, budget, work, stop,
                                              timeout)
    except Exception as exc:  # noqa: BLE001 - one broken job must not lose an hour of others
        job.error = f"{type(exc).__name__}: {exc}"[-2000:]
    job.wall_s = time.perf_counter() - start
    if job.error is None:
        saved.write_text(json.dumps({"key": key, "rows": job.rows, "cpu_s": job.cpu_s, "wall_s": job.wall_s,
                                     "analyses": job.analyses}), encoding="utf-8")
    return job


def measure(methods: list[str], seeds: list[int], budget: int, systems_wanted: list[str] | None,
            work: Path, ruleset: str | None, analysis: bool, log: Any = _log, jobs: int = 1,
            timeout: float = 20.0, run: bool = True
            ) -> tuple[dict[str, dict[str, list[int | None]]], list[dict[str, Any]],
                       dict[str, dict[str, float]], list[Defect]]:
    """Figures per method and defect (one entry per seed that has a result, in seed order; a
    run that failed, or was not run with ``run`` false, is left out and said so), the analysis
    scores, the wall and CPU seconds per method (summed over its jobs), the defects measured."""
    systems, defects = load_truth()
    chosen = [s for s in systems.values() if not systems_wanted or s.name in systems_wanted]
    defects = [d for d in defects if d.system in {s.name for s in chosen}]
    # the slow systems (a SUT restarted per variant) first, so that the pool does not end on one
    order = sorted(chosen, key=lambda s: "config_space" not in (s.path / "pyproject.toml").read_text())
    todo = [Job(seed, system, method) for seed in seeds for system in order for method in methods]
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        futures = [pool.submit(_do, job, budget, work, ruleset, analysis, timeout, defects, run)
                   for job in todo]
        for future in as_completed(futures):
            job = future.result()
            if job.rows is None and job.error is None:
                continue  # not run (run false) and no result to reuse
            if job.error:
                log(f"seed {job.seed} {job.system.name:<13} {job.method:<14} RUN FAILED (left out of "
                    f"the figures): {job.error}")
                continue
            mine = [d for d in defects if d.system == job.system.name]
            found = first_finds(job.rows or [], mine)
            unexplained = sum(1 for r in job.rows or [] if r.get("outcome") == "failed" and not r["markers"])
            timeouts = sum(1 for r in job.rows or [] if r.get("outcome") == "timeout")
            stalled = any(r.get("outcome") == "stalled" for r in job.rows or [])
            log(f"seed {job.seed} {job.system.name:<13} {job.method:<14} {job.wall_s:6.1f}s wall "
                f"{'(reused) ' if job.reused else ''}"
                f"{job.cpu_s:6.1f}s cpu {len(job.rows or []):>4} ex  "
                + " ".join(f"{d.id}={found[d.id] or '-'}" for d in mine)
                + (f"  TIMEOUTS {timeouts}" if timeouts else "")
                + ("  STALLED (interrupted; the rest of its budget found nothing)" if stalled else "")
                + (f"  UNEXPLAINED FAILURES {unexplained}" if unexplained else ""))
    per = {m: {d.id: [] for d in defects} for m in methods}
    spent = {m: {"wall_s": 0.0, "cpu_s": 0.0} for m in methods}
    analyses: list[dict[str, Any]] = []
    missing = [j for j in todo if j.rows is None]
    if missing:
        log(f"{len(missing)} of {len(todo)} runs have no result (failed or not run) and are left out: "
            + ", ".join(f"{j.system.name}/{j.method}/{j.seed}" for j in missing))
    for job in sorted(todo, key=lambda j: j.seed):  # seed order, whatever order they finished in
        if job.rows is None:
            continue
        mine = [d for d in defects if d.system == job.system.name]
        found = first_finds(job.rows or [], mine)
        for d in mine:
            per[job.method][d.id].append(found[d.id])
        spent[job.method]["wall_s"] += job.wall_s
        spent[job.method]["cpu_s"] += job.cpu_s
        analyses += job.analyses or []
    return per, analyses, spent, defects
