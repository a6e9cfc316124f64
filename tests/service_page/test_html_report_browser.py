"""The HTML report of a real run, opened from disk in Debian's chromium with the network blocked:
it draws every chart with the plotly.js it carries, lists the failures, and logs no error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from execution.conftest import make_suite, run_testfleet

pytestmark = pytest.mark.slow

SUITE = {
    "tests/test_app.py": """
        import testfleet
        from testfleet import Int


        @testfleet.explore(size=Int(0, 10), count=Int(0, 10))
        def test_ok(size, count):
            assert size < 8, "too big"


        def test_broken():
            print("</script><script>window.hacked = 1</script>")
            assert 1 == 2, "broken <b>here</b>"
        """,
}


def test_report_opens_offline_with_its_charts_and_failures(tmp_path: Path, browser: Any) -> None:
    root = make_suite(tmp_path / "p", SUITE)
    ran = run_testfleet(root, "--html", "report.html", "--explore", "12", "--seed", "3", workers=1)
    assert ran.returncode == 1, ran.log
    report = root / "report.html"

    context = browser.new_context()
    asked: list[str] = []

    def only_the_file(route: Any) -> None:
        asked.append(route.request.url)
        if route.request.url == report.as_uri():
            route.continue_()
        else:
            route.abort()

    context.route("**/*", only_the_file)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    try:
        page.goto(report.as_uri())
        charts = page.locator("div.chart").count()
        assert charts >= 10  # telemetry (one per metric), coverage heatmaps, the analysis's bars
        page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {charts}",
                               timeout=30_000)
        assert page.locator(".js-plotly-plot").count() == charts
        failures = page.locator("details.failure > summary").all_inner_texts()
        assert "tests/test_app.py::test_broken" in failures[0], failures
        assert "broken <b>here</b>" in failures[0]
        assert any("test_ok[" in f and "too big" in f for f in failures[1:]), failures  # explored
        assert "window.hacked = 1" in page.locator("details.failure pre").all_text_contents()[1]
        assert page.evaluate("window.hacked") is None  # the test's output stayed text
        assert "minimal failing change: size=" in page.locator("#exploration").inner_text()
    finally:
        context.close()
    assert asked == [report.as_uri()], asked  # nothing but the file itself was fetched
    assert problems == []
