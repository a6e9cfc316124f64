"""The evaluation zoo of bench/zoo: its ground truth agrees with the systems' code, its suites
know nothing of the defects and pass their baseline, and its scorer counts as documented."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ZOO = Path(__file__).resolve().parents[2] / "bench" / "zoo"
sys.path.insert(0, str(ZOO))

from scoring import (  # noqa: E402
    Defect,
    first_finds,
    geomean,
    load_truth,
    stop_sets,
    summarise,
    targets,
)

SYSTEMS, DEFECTS = load_truth()
TAG = re.compile(r"""(?:_internal|_fault|_bug|_Broken|PoolFault|CacheFault|LimiterFault)\(\s*["']([a-z0-9-]+)["']""")


def _code(system: str) -> str:
    """The system's own source (not its tests)."""
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted((ZOO / system).glob("*.py")))


def _suite(system: str) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted((ZOO / system / "tests").glob("*.py")))


def test_the_zoo_is_as_big_and_as_varied_as_promised() -> None:
    assert len(SYSTEMS) >= 8 and len(DEFECTS) >= 30
    assert len({d.klass for d in DEFECTS}) >= 8
    for half in ("tuning", "held-out"):
        assert any(s.half == half for s in SYSTEMS.values()), half
    assert {s.half for s in SYSTEMS.values()} == {"tuning", "held-out"}


def test_every_defect_is_planted_in_exactly_its_own_system() -> None:
    ids = [d.id for d in DEFECTS]
    assert len(ids) == len(set(ids)), "defect ids repeat"
    for defect in DEFECTS:
        holders = [name for name in SYSTEMS if f'"{defect.id}"' in _code(name)]
        assert holders == [defect.system], (defect.id, holders)
    planted = {tag for name in SYSTEMS for tag in TAG.findall(_code(name))}
    assert planted == set(ids), (planted ^ set(ids))


def test_no_suite_knows_a_defect() -> None:
    for name in SYSTEMS:
        suite = _suite(name)
        assert "ZOO-DEFECT" not in suite, name
        for defect in DEFECTS:
            assert defect.id not in suite, (name, defect.id)


def test_every_case_is_an_explorable_test_of_its_system() -> None:
    for system in SYSTEMS.values():
        for case in system.cases:
            path, name = case.split("::")
            text = (system.path / path).read_text(encoding="utf-8")
            match = re.search(rf"@testfleet\.explore\((?:(?!\ndef ).)*?\)\s*\ndef {name}\(", text, re.S)
            assert match, case
    for defect in DEFECTS:
        assert defect.case == "*" or defect.case in SYSTEMS[defect.system].cases, defect.id


def test_first_find_counts_within_the_defects_case() -> None:
    a = Defect("a", "numeric", "s", "t::one", ("x",), "tuning")
    anywhere = Defect("b", "leak", "s", "*", (), "tuning")
    rows = [{"case": "t::two", "markers": ["a"]}, {"case": "t::one", "markers": []},
            {"case": "t::one", "markers": ["a", "b"]}, {"case": "t::two", "markers": ["b"]}]
    assert first_finds(rows, [a, anywhere]) == {"a": 2, "b": 3}
    assert first_finds(rows[:2], [a, anywhere]) == {"a": None, "b": None}


def test_geomean_ratio_counts_a_miss_as_budget_plus_one() -> None:
    d1 = Defect("d1", "numeric", "s", "c", (), "tuning")
    d2 = Defect("d2", "order", "s", "c", (), "tuning")
    d3 = Defect("d3", "order", "s", "c", (), "tuning")  # nobody found it: left out of ratios
    per = {"explore": {"d1": [2, 4, 3], "d2": [None, None, 10], "d3": [None] * 3},
           "random": {"d1": [12, 12, 12], "d2": [5, 5, 5], "d3": [None] * 3}}
    [overall, numeric, order] = [r for r in summarise(per, [d1, d2, d3], budget=100) if r["half"] == "tuning"]
    assert overall["explore/random_n"] == 2
    assert overall["explore/random"] == pytest.approx(geomean([3 / 12, 101 / 5]))
    assert numeric["explore/random"] == pytest.approx(0.25) and order["explore/random"] == pytest.approx(101 / 5)
    assert overall["found_4of5"] == 1  # d1 found in all its seeds; d2 in one


def test_targets_pass_and_fail_as_the_issue_states_them() -> None:
    fast = Defect("fast", "numeric", "s", "c", (), "held-out")
    slow = Defect("slow", "load", "s", "c", (), "held-out")
    per = {"explore": {"fast": [1, 2, 2, 3, None], "slow": [10, 10, 12, 10, 10]},
           "random": {"fast": [20, 20, 20, 20, 20], "slow": [40, 40, 40, 40, 40]},
           "hypothesis": {"fast": [2, 2, 2, 2, 2], "slow": [5, 5, 5, 5, 5]},
           "explore-notel": {"fast": [2, 2, 2, 2, 2], "slow": [30, 31, 29, 30, 30]}}
    got = {t["target"].split(" <=")[0].split(" >")[0]: t for t in targets(per, [fast, slow], 100, "held-out")}
    assert got["every defect found in"]["ok"] and got["every defect found in"]["value"] == "2/2"
    assert got["geomean explore/random"]["ok"]  # sqrt(2/20 * 10/40) = 0.16
    assert not got["geomean explore/hypothesis"]["ok"]  # sqrt(1 * 2) = 1.41
    assert got["no class explore/random"]["ok"]
    assert got["telemetry-dependent (load) explore/explore-notel"]["ok"]  # 10/30
    per["explore"]["slow"] = [None, None, 12, None, 10]  # found in 2 of 5 only, and later than random
    got = {t["target"].split(" <=")[0].split(" >")[0]: t for t in targets(per, [fast, slow], 100, "held-out")}
    assert not got["every defect found in"]["ok"] and "slow" in got["every defect found in"]["value"]
    assert not got["no class explore/random"]["ok"] and "load" in got["no class explore/random"]["value"]
    assert not got["telemetry-dependent (load) explore/explore-notel"]["ok"]
    assert targets(per, [fast, slow], 100, "tuning") == []


def test_stop_sets_name_the_case_defects_and_the_systemwide_ones() -> None:
    stops = stop_sets(SYSTEMS["kvserver"], DEFECTS)
    assert stops["tests/test_kv.py::test_operation_sequences"] == ["kv-incr-expired", "kv-session-leak"]


def _pytest(system: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **(extra_env or {})}
    env["PYTHONPATH"] = os.pathsep.join([str(ZOO), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           *(["-p", "zoo_harness"] if extra_env else [])],
                          cwd=ZOO / system, capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.slow
@pytest.mark.parametrize("system", sorted(SYSTEMS))
def test_each_suite_passes_its_baseline_under_plain_pytest(system: str) -> None:
    ran = _pytest(system)
    assert ran.returncode == 0, ran.stdout[-3000:]
    assert " passed" in ran.stdout and "failed" not in ran.stdout


@pytest.mark.slow
def test_the_random_harness_is_seeded_and_finds_a_planted_defect(tmp_path: Path) -> None:
    def rows(out: Path) -> list[dict]:
        ran = _pytest("ttlcache", {"ZOO_METHOD": "random", "ZOO_SEED": "3", "ZOO_BUDGET": "40",
                                   "ZOO_OUT": str(out)})
        assert ran.returncode in (0, 1), ran.stdout[-3000:]
        return [json.loads(line) for line in out.read_text().splitlines()]

    first, again = rows(tmp_path / "a.jsonl"), rows(tmp_path / "b.jsonl")
    assert first == again
    assert [r["index"] for r in first] == list(range(1, 41))
    assert {r["case"] for r in first} == set(SYSTEMS["ttlcache"].cases)
    found = first_finds(first, [d for d in DEFECTS if d.system == "ttlcache"])
    assert found["cache-long-key"] == 9  # seed 3: key_len >= 1000 at the 9th point


def test_a_stalled_run_is_interrupted_and_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import measure

    monkeypatch.setattr(measure, "STALL_S", 2.0)
    # Ctrl-C's default action, however this suite was started (a shell's background job ignores
    # SIGINT, and the child would then sit out the 30 s before SIGKILL)
    script = ("import signal, time; signal.signal(signal.SIGINT, signal.default_int_handler); "
              "print('started', flush=True); time.sleep(120)")
    ran = measure._run([sys.executable, "-c", script], tmp_path, dict(os.environ), tmp_path / "log",
                       tmp_path / "never-written")
    assert ran.stalled and ran.returncode != 0
    assert ran.output.startswith("started")


def test_a_run_that_keeps_writing_is_not_stalled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import measure

    monkeypatch.setattr(measure, "STALL_S", 2.0)
    script = "import time\nfor i in range(5):\n    print(i, flush=True); time.sleep(1)"
    ran = measure._run([sys.executable, "-c", script], tmp_path, dict(os.environ), tmp_path / "log",
                       tmp_path / "never-written")
    assert not ran.stalled and ran.returncode == 0 and ran.cpu_s > 0


@pytest.mark.slow
def test_a_hanging_execution_is_stopped_and_recorded_as_a_timeout(tmp_path: Path) -> None:
    suite = tmp_path / "hangs"
    (suite / "tests").mkdir(parents=True)
    (suite / "pyproject.toml").write_text("[tool.pytest.ini_options]\ntestpaths = ['tests']\n")
    (suite / "tests" / "test_hang.py").write_text(
        "import threading\nimport testfleet\nfrom testfleet import Int\n\n\n"
        "@testfleet.explore(n=Int(0, 1000))\n"
        "def test_waits(n):\n"
        "    if n % 2:\n"
        "        threading.Event().wait()  # a pool that never joins\n")
    out = tmp_path / "out.jsonl"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ZOO), os.environ.get("PYTHONPATH", "")]),
           "ZOO_METHOD": "random", "ZOO_SEED": "1", "ZOO_BUDGET": "6", "ZOO_OUT": str(out), "ZOO_TIMEOUT": "1"}
    ran = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "zoo_harness"],
                         cwd=suite, check=False, capture_output=True, text=True, timeout=120, env=env)
    assert ran.returncode in (0, 1), ran.stdout[-3000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 6  # every point ran; none stalled the run
    assert {r["outcome"] for r in rows} == {"passed", "timeout"}
    assert all(r["markers"] == [] for r in rows)
