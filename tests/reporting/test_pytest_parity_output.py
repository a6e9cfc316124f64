"""What `testfleet run` prints and stores matches plain pytest on small suites written here.

Each test writes a suite, runs it with plain ``python -m pytest`` and with ``testfleet run``
(real worker processes, a real DuckDB store) and compares what a user reads. Test modules live
under ``tests/`` so that, as in a real project, the coordinator (started in the suite's root)
cannot import them: only the workers' pytest sessions put ``tests/`` on ``sys.path``.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from execution.conftest import Ran, make_suite, outcome_counts, run_pytest, run_testfleet

pytestmark = pytest.mark.slow

ENUM_SUITE = {
    "tests/test_enums.py": """
        import enum
        import pytest

        class Level(enum.IntEnum):
            LOW = 1
            HIGH = 2

        class Mode(enum.StrEnum):
            FAST = "fast"
            SAFE = "safe"

        @pytest.mark.parametrize("level", list(Level))
        @pytest.mark.parametrize("mode", list(Mode))
        def test_combination(level, mode):
            assert isinstance(level, Level) and isinstance(mode, Mode)
            assert not (level is Level.HIGH and mode is Mode.FAST)
    """,
}


def test_enum_parameters_defined_in_the_test_module_run_like_pytest(tmp_path: Path) -> None:
    root = make_suite(tmp_path / "suite", ENUM_SUITE)
    plain = run_pytest(root)
    fleet = run_testfleet(root)
    assert outcome_counts(plain.output) == {"failed": 1, "passed": 3}, plain.log
    assert outcome_counts(fleet.output) == outcome_counts(plain.output), fleet.log
    assert fleet.returncode == plain.returncode == 1, fleet.log
    assert "Traceback" not in fleet.stderr, fleet.log
    # the enum member still reaches the test (its isinstance assertion passes)
    failed = [r.nodeid for r in fleet.results() if r.outcome == "failed"]
    assert failed == re.findall(r"^FAILED (\S+)", plain.stdout, re.MULTILINE), fleet.log


def test_data_the_coordinator_cannot_import_is_an_internal_error_naming_the_test(tmp_path: Path) -> None:
    # a marker argument is sent as it is: an enum of the test module cannot be read by the
    # coordinator, which must say so (exit 3, pytest's internal error) rather than crash
    root = make_suite(tmp_path / "suite", {"tests/test_zones.py": """
        import enum
        import pytest

        class Zone(enum.StrEnum):
            EU = "eu"

        @pytest.mark.requires(labels={"zone": Zone.EU})
        def test_zoned():
            pass

        def test_plain():
            pass
    """})
    fleet = run_testfleet(root)
    assert fleet.returncode == 3, fleet.log
    assert "Traceback" not in fleet.output, fleet.log
    message = [line for line in fleet.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(message) == 1, fleet.log
    assert "internal error" in message[0] and "tests/test_zones.py::test_zoned" in message[0], fleet.log
    assert "test_zones.Zone" in message[0] and "test_plain" not in message[0], fleet.log
    assert fleet.run().exit_code == 3


SUBTESTS_SUITE = {
    "tests/test_subtests.py": """
        import unittest
        import pytest

        def test_numbers(subtests):
            for i in range(5):
                with subtests.test(msg="number", i=i):
                    assert i != 1
                    if i == 3:
                        pytest.skip("three is skipped")

        def test_all_pass(subtests):
            for i in range(3):
                with subtests.test(i=i):
                    print("output of", i)

        class TestCase(unittest.TestCase):
            def test_items(self):
                for i in range(3):
                    with self.subTest(i=i):
                        self.assertNotEqual(i, 2)

            def test_plain(self):
                pass

        @pytest.mark.skip(reason="not today")
        def test_skipped():
            pass

        @pytest.mark.xfail(reason="known bug")
        def test_known_bug():
            assert 0

        @pytest.mark.xfail(reason="fixed already")
        def test_fixed():
            pass
    """,
}


def _summary_section(output: str) -> list[str]:
    """The lines of the short test summary (after its header, up to the summary line)."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if "short test summary info" in line)
    end = next(i for i in range(start + 1, len(lines)) if re.search(r" in [\d.]+s", lines[i]))
    return lines[start + 1:end]


_FOLDED_SKIP = re.compile(r"^(?P<word>.+?) (?P<rest>\[\d+\] \S+: .*)$")


def _skip_words(lines: list[str]) -> tuple[set[str], list[str]]:
    """The words on the folded skip lines (``SKIPPED [1] file:line: why``), and the lines with
    that word taken out. pytest labels every folded skip line with the word of the first skip it
    saw (here ``SUBSKIPPED[number] (i=3)`` from a subtest, or ``SKIPPED`` from the marked test):
    with two workers, which skip comes first depends on which worker finishes first."""
    words: set[str] = set()
    out: list[str] = []
    for line in lines:
        match = _FOLDED_SKIP.match(line)
        if match and ("SKIPPED" in match["word"]):
            words.add(match["word"])
            line = "<skip> " + match["rest"]
        out.append(line)
    return words, out


def _groups(lines: list[str]) -> list[str]:
    """The -r character of each summary line, runs of one character merged: e.g. ``sxXf``."""
    kinds = {"SKIPPED": "s", "SUBSKIPPED": "s", "XFAIL": "x", "XPASS": "X", "ERROR": "E"}
    chars = [kinds.get(re.split(r"[\[( ]", line, maxsplit=1)[0], "f") for line in lines]
    return [c for i, c in enumerate(chars) if i == 0 or chars[i - 1] != c]


@pytest.mark.parametrize("args", [(), ("-q",), ("-ra",), ("-q", "-ra")], ids=["default", "q", "ra", "q-ra"])
def test_subtests_and_short_summary_match_pytest(tmp_path: Path, args: tuple[str, ...]) -> None:
    root = make_suite(tmp_path / "suite", SUBTESTS_SUITE)
    plain = run_pytest(root, *args)
    # the reports ride along (one run of the suite per verbosity, not one more for them)
    fleet = run_testfleet(root, "--json", "r.json", "--junitxml", "j.xml", "--md", "s.md", "--", *args)
    assert outcome_counts(fleet.output) == outcome_counts(plain.output), fleet.log
    assert fleet.returncode == plain.returncode == 1, fleet.log
    # pytest's words for each report (SUBFAILED[number] (i=1), XFAIL, SKIPPED [1] ...) grouped in
    # pytest's order of the -r characters; within a group, workers finish in any order
    fleet_lines, plain_lines = _summary_section(fleet.stdout), _summary_section(plain.stdout)
    assert _groups(fleet_lines) == _groups(plain_lines), fleet.log + "\n" + plain.log
    # the folded skip lines carry one word, that of a skip report of the suite: plain pytest's
    # (its first skip, serially) or the marked test's own SKIPPED when its worker came first
    fleet_words, fleet_rest = _skip_words(fleet_lines)
    plain_words, plain_rest = _skip_words(plain_lines)
    assert len(fleet_words) == len(plain_words) == ("-ra" in args), fleet.log + "\n" + plain.log
    assert fleet_words <= plain_words | {"SKIPPED"}, fleet.log + "\n" + plain.log
    assert sorted(fleet_rest) == sorted(plain_rest), fleet.log + "\n" + plain.log
    # each failed subtest has its own FAILURES section, named as pytest names it
    for header in ("test_numbers [number] (i=1)", "TestCase.test_items (i=2)"):
        assert re.search(rf"_ {re.escape(header)} _", fleet.stdout), fleet.log
    if "-q" in args:  # the bare summary line, counting subtests as pytest does under -q
        assert "subtests passed" in plain.stdout.splitlines()[-1]
        last = [line for line in fleet.stdout.splitlines() if re.search(r" in [\d.]+s", line)][-1]
        assert not last.startswith("="), fleet.log
        _assert_subtests_in_the_reports(root, fleet)  # which count them so too


def _assert_subtests_in_the_reports(root: Path, fleet: Ran) -> None:
    """The subtests are in the JSON, JUnit XML and Markdown reports of the run."""
    report = json.loads((root / "r.json").read_text())
    counts = outcome_counts(fleet.output)
    assert {k: v for k, v in report["summary"].items() if k not in ("total", "collected")} == counts, fleet.log
    tests = {t["nodeid"]: t for t in report["tests"]}
    numbers = tests["tests/test_subtests.py::test_numbers"]["subtests"]
    assert [(s["description"], s["outcome"]) for s in numbers] == [
        ("[number] (i=0)", "passed"), ("[number] (i=1)", "failed"), ("[number] (i=2)", "passed"),
        ("[number] (i=3)", "skipped"), ("[number] (i=4)", "passed")]
    assert numbers[1]["message"] == "assert 1 != 1" and "assert i != 1" in numbers[1]["longrepr"]
    case = next(c for c in ET.parse(root / "j.xml").getroot().iter("testcase") if c.get("name") == "test_items")
    assert [f.get("message") for f in case.findall("failure")] == ["AssertionError: 2 == 2"]
    markdown = (root / "s.md").read_text()
    assert "test_numbers [number] (i=1)" in markdown and "subtests passed" in markdown


def test_huge_captured_output_is_clipped_on_the_console_and_kept_whole_in_store_and_reports(
        tmp_path: Path) -> None:
    lines = 40_000  # 3.2 MB of stdout from one failing test
    root = make_suite(tmp_path / "suite", {"tests/test_loud.py": f"""
        def test_loud():
            for i in range({lines}):
                print(f"line {{i:06d}} " + "x" * 67)
            assert False, "too loud"
    """})
    fleet = run_testfleet(root, "--json", "r.json", "--junitxml", "j.xml")
    assert fleet.returncode == 1, fleet.log
    assert len(fleet.stdout) < 100_000, fleet.stdout[:2000]
    assert "line 000000" in fleet.stdout and f"line {lines - 1:06d}" in fleet.stdout  # head and tail
    assert "not shown" in fleet.stdout and "FAILED tests/test_loud.py::test_loud - AssertionError: too loud" \
        in fleet.stdout
    [stored] = fleet.results()
    assert stored.stdout.count("\n") == lines and f"line {lines - 1:06d}" in stored.stdout
    [test] = json.loads((root / "r.json").read_text())["tests"]
    assert test["call"]["stdout"] == stored.stdout
    assert ET.parse(root / "j.xml").getroot().find(".//system-out").text.count("\n") >= lines


LONG_MESSAGES = {
    "tests/test_long.py": """
        import pytest

        def test_long_message():
            assert False, "x" * 300

        def test_fits():
            assert False, "short"

        @pytest.fixture
        def broken():
            raise RuntimeError("setup went wrong " + "y" * 300)

        def test_error(broken):
            pass

        @pytest.mark.xfail(reason="z" * 300)
        def test_xfail_reason_stays_whole():
            assert False
    """,
}


@pytest.mark.parametrize("columns,on_ci", [("80", False), ("120", False), ("80", True)],
                         ids=["80", "120", "ci"])
def test_failure_messages_fit_the_terminal_as_pytest_cuts_them(tmp_path: Path, monkeypatch,
                                                               columns: str, on_ci: bool) -> None:
    """pytest cuts ` - message` of a FAILED/ERROR line to the terminal's width with `...` (whole
    on CI); testfleet printed the whole message whatever the width."""
    for name in ("CI", "BUILD_NUMBER"):
        monkeypatch.delenv(name, raising=False)
    env = {"COLUMNS": columns, **({"CI": "true"} if on_ci else {})}
    root = make_suite(tmp_path / "suite", LONG_MESSAGES)
    plain = run_pytest(root, "-ra", env=env)
    fleet = run_testfleet(root, "--", "-ra", env=env)
    fleet_lines, plain_lines = _summary_section(fleet.stdout), _summary_section(plain.stdout)
    assert sorted(fleet_lines) == sorted(plain_lines), fleet.log + "\n" + plain.log
    long_line = next(line for line in fleet_lines if "test_long_message" in line)
    assert (len(long_line) > 300) == on_ci and (on_ci or long_line.endswith("...")), long_line
