"""Status badge: a well-formed SVG whose text and colour say how the stored run went."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import pytest

from testfleet.cli.app import main
from testfleet.model import Run, RunStatus
from testfleet.reporting.badge import GREEN, GREY, ORANGE, RED, YELLOW, badge_message, badge_svg, text_width
from testfleet.store.db import Store

SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize(("counts", "flaky", "status", "expected"), [
    ({"passed": 120}, 0, RunStatus.finished, ("120 passed", GREEN)),
    ({"failed": 2, "timeout": 1, "passed": 117}, 0, RunStatus.finished, ("3 failed, 117 passed", RED)),
    ({"error": 2, "passed": 5, "skipped": 1, "xfailed": 1}, 0, RunStatus.finished,
     ("2 errors, 5 passed, 2 skipped", RED)),
    ({"passed": 9}, 1, RunStatus.finished, ("9 passed, 1 flaky", YELLOW)),
    ({"passed": 4}, 0, RunStatus.interrupted, ("interrupted: 4 passed", ORANGE)),
    ({}, 0, RunStatus.finished, ("no tests", GREY)),
    ({"skipped": 3}, 0, RunStatus.finished, ("3 skipped", GREY)),
])
def test_message_and_colour(counts: dict[str, int], flaky: int, status: RunStatus,
                            expected: tuple[str, str]) -> None:
    assert badge_message(counts, flaky, status) == expected


def test_svg_is_well_formed_and_wide_enough_for_its_text() -> None:
    root = ET.fromstring(badge_svg("tests", "3 failed, 117 passed", RED))
    assert root.tag == f"{SVG}svg" and root.get("aria-label") == "tests: 3 failed, 117 passed"
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert texts.count("tests") == 2 and texts.count("3 failed, 117 passed") == 2  # text and shadow
    assert RED in [r.get("fill") for r in root.iter(f"{SVG}rect")]
    assert int(root.get("width", "0")) >= text_width("tests") + text_width("3 failed, 117 passed")
    assert text_width("1 failed, 200 passed, 3 skipped") > text_width("120 passed")
    ET.fromstring(badge_svg("<tests & co>", "1 'passed'", GREEN))  # escaped


def test_badge_command_writes_the_stored_runs_badge(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "s.duckdb"
    run = Run(run_id="20260101-000000-abcd", started_at=datetime(2026, 1, 1, tzinfo=UTC))
    with Store.open(store) as db:
        db.begin_run(run)
        db.finish_run(run.model_copy(update={"status": RunStatus.finished, "counts": {"failed": 3, "passed": 120},
                                             "finished_at": datetime(2026, 1, 1, 0, 1, tzinfo=UTC)}))
    out = tmp_path / "badge.svg"
    assert main(["badge", "last", "-o", str(out), "--store", str(store)]) == 0
    root = ET.parse(out).getroot()
    assert "3 failed, 120 passed" in [t.text for t in root.iter(f"{SVG}text")]
    assert "badge.svg: tests | 3 failed, 120 passed (run 20260101-000000-abcd)" in capsys.readouterr().out
    assert main(["badge", "nope", "-o", str(out), "--store", str(store)]) == 2
    assert "no run 'nope'" in capsys.readouterr().err
    assert main(["badge", "last", "-o", str(tmp_path), "--store", str(store)]) == 2  # a folder
