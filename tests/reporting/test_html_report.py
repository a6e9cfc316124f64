"""The HTML report (``--html``, ``testfleet report RUN --html``): what a reader finds in it.

One real run of a small suite (a failure that prints ``</script>`` and 30,000 characters, a flaky
test, an explored test with a failing region) is made into a store and an HTML file by
``testfleet run --html``; the tests read that document back with Python's HTML parser. The
escaping is tested on arbitrary text with Hypothesis, on a document rendered in memory.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from execution.conftest import make_suite, run_testfleet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testfleet.cli.app import main
from testfleet.model import Outcome, Result, Run, RunStatus
from testfleet.reporting.html import ReportData, render
from testfleet.reporting.html.sections import FAILURES_SHOWN, TEXT_LIMIT
from testfleet.reporting.telemetry_plot import telemetry_figures

LONG_LINE = "0123456789" * 10

SUITE = {
    "tests/test_app.py": f"""
        import sys
        from pathlib import Path

        import testfleet
        from testfleet import Float, Int

        MARK = Path(__file__).parent / "flaky-mark"


        def test_ok():
            pass


        def test_broken():
            print("out </script><script>window.hacked = 1</script>")
            for i in range(300):
                print("{LONG_LINE}")
            sys.stderr.write("err & <b>bold</b>\\n")
            assert 1 == 2, "broken </script>"


        def test_flaky():
            if not MARK.exists():
                MARK.touch()
                assert False, "first attempt fails"


        @testfleet.explore(size=Int(0, 100), ratio=Float(0, 1))
        def test_explore(size, ratio):
            assert size < 70, f"too big {{size}}"
        """,
}


class Page(HTMLParser):
    """The parts of a document the tests read: scripts, ``<pre>`` texts, sections, failures."""

    def __init__(self, document: str) -> None:
        super().__init__(convert_charrefs=True)
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.pres: list[tuple[str, str]] = []      # (class, text)
        self.sections: list[str] = []
        self.failures: list[str] = []              # the <summary> text of each failure
        self.tags: list[str] = []
        self._script: dict[str, str | None] | None = None
        self._pre: tuple[str, list[str]] | None = None
        self._summary: list[str] | None = None
        self._failure_opened = False  # a failure's own <summary> comes next
        self.feed(document)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        self.tags.append(tag)
        if tag == "script":
            self._script = attr
            self._text: list[str] = []
        elif tag == "pre":
            self._pre = (attr.get("class") or "", [])
        elif tag == "section":
            self.sections.append(str(attr.get("id")))
        if tag == "details" and attr.get("class") == "failure":
            self._failure_opened = True
        elif tag == "summary" and self._failure_opened:
            self._summary = []
            self._failure_opened = False

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._script is not None:
            self.scripts.append((self._script, "".join(self._text)))
            self._script = None
        elif tag == "pre" and self._pre is not None:
            self.pres.append((self._pre[0], "".join(self._pre[1])))
            self._pre = None
        elif tag == "summary" and self._summary is not None:
            self.failures.append("".join(self._summary))
            self._summary = None

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self._text.append(data)
        if self._pre is not None:
            self._pre[1].append(data)
        if self._summary is not None:
            self._summary.append(data)

    def figures(self) -> dict[str, Any]:
        [(_, text)] = [s for s in self.scripts if s[0].get("id") == "tf-figures"]
        return json.loads(text)

    def pre_text(self, needle: str, css: str = "") -> str:
        return next(text for kind, text in self.pres if needle in text and kind == css)


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """(project, store, the document `run --html` wrote) of one real run."""
    root = make_suite(tmp_path_factory.mktemp("html") / "p", SUITE)
    store = root / "s.duckdb"
    ran = run_testfleet(root, "--reruns", "1", "--explore", "30", "--seed", "7", "--html",
                        "reports/run.html", store=store)
    assert ran.returncode == 1, ran.log
    assert "report: " in ran.stdout and "run.html" in ran.stdout, ran.log
    return root, store, (root / "reports" / "run.html").read_text(encoding="utf-8")


@pytest.mark.slow
def test_report_of_a_stored_run_is_the_document_the_run_wrote(stored: tuple[Path, Path, str],
                                                              tmp_path: Path, capsys: Any) -> None:
    root, store, document = stored
    out = tmp_path / "later" / "report.html"
    assert main(["report", "last", "--store", str(store), "--html", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == document
    assert "report: " in capsys.readouterr().out


@pytest.mark.slow
def test_the_document_holds_summary_failures_flaky_slowest_and_findings(
        stored: tuple[Path, Path, str]) -> None:
    _, store, document = stored
    page = Page(document)
    from testfleet.store.db import Store

    with Store.open(store, read_only=True) as db:
        run = db.get_run("last")
    assert page.sections == ["summary", "failures", "flaky", "slowest", "exploration", "telemetry",
                             "coverage", "analysis"]
    text = re.sub(r"<[^>]+>", " ", document.split("<script", 1)[0])
    for fact in (run.run_id, "seed", str(run.seed), "wall time", "1 flaky"):
        assert fact in text, fact
    # the failures: the baseline one, then one section per distinct explored failure
    assert any("tests/test_app.py::test_broken" in f and "broken </script>" in f
               for f in page.failures), page.failures
    assert any("test_explore[" in f and "too big" in f for f in page.failures), page.failures
    traceback = page.pre_text("assert 1 == 2", "traceback")
    assert 'assert 1 == 2, "broken </script>"' in traceback
    # captured output shown as text, cut in the middle with a note of how much
    stdout = page.pre_text("window.hacked")
    assert stdout.startswith("\nout </script><script>window.hacked = 1</script>\n")
    whole = len("out </script><script>window.hacked = 1</script>\n") + 300 * (len(LONG_LINE) + 1) - 1
    assert f"[… {whole - TEXT_LIMIT:,} characters cut here" in stdout
    assert stdout.rstrip().endswith(LONG_LINE)
    assert "err & <b>bold</b>" in page.pre_text("err &")
    # flaky and slowest, exploration's minimal variant, the analysis's verdict on `size`
    flaky = document[document.index('id="flaky"'):document.index('id="slowest"')]
    assert "tests/test_app.py::test_flaky" in flaky and "1/2" in flaky
    assert document.count("</td></tr>", document.index('id="slowest"'),
                          document.index('id="exploration"')) == 10
    exploration = document[document.index('id="exploration"'):document.index('id="telemetry"')]
    assert "minimal failing change: size=70" in exploration
    analysis = document[document.index('id="analysis"'):]
    assert re.search(r"<code>size</code>.*significant", analysis)


@pytest.mark.slow
def test_plotly_goes_in_once_and_every_chart_has_its_data(stored: tuple[Path, Path, str]) -> None:
    _, _, document = stored
    page = Page(document)
    kinds = [(attrs.get("type"), attrs.get("id")) for attrs, _ in page.scripts]
    assert kinds == [(None, None), ("application/json", "tf-figures"), (None, None)]
    assert document.count("plotly.js v") == 1  # the bundle's banner
    spec = page.figures()
    ids = re.findall(r'<div class="chart" id="(chart-\d+)">', document)
    assert ids == [f["id"] for f in spec["figures"]]
    titles = [f["layout"]["title"]["text"] for f in spec["figures"]]
    assert "worker.rss_mb" in titles  # telemetry, one chart per metric with a line per worker
    rss = spec["figures"][titles.index("worker.rss_mb")]
    assert {trace["name"] for trace in rss["data"]} == {"gw0", "gw1"}
    assert any(t.startswith("Pairwise coverage") for t in titles)  # the coverage heatmap
    assert "Failure rate by size" in titles  # the analysis's picture
    # one template for all, not one copy per figure
    assert len(spec["templates"]) < len(spec["figures"])


@pytest.mark.slow
def test_bad_run_or_path_says_so_and_writes_nothing(stored: tuple[Path, Path, str], tmp_path: Path,
                                                    capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    root, store, _ = stored
    assert main(["report", "no-such-run", "--store", str(store), "--html", str(tmp_path / "r.html")]) == 2
    assert "no run 'no-such-run'" in capsys.readouterr().err and not (tmp_path / "r.html").exists()
    folder = tmp_path / "a_dir"
    folder.mkdir()
    assert main(["report", "last", "--store", str(store), "--html", str(folder)]) == 2
    assert "[--html]: is a directory" in capsys.readouterr().err
    # `run --html` refuses the path before any test runs, with run's usage exit code
    monkeypatch.chdir(root)
    assert main(["run", "--store", str(store), "--html", str(folder)]) == 4
    said = capsys.readouterr()
    assert "[--html]: is a directory" in said.err and "collected" not in said.out
    assert list(folder.iterdir()) == []


# -- escaping, on documents rendered in memory ---------------------------------------------------

STARTED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
NASTY = st.sampled_from(["</script>", "</SCRIPT >", "<!--", "<script>", "]]>", "&amp;", "\"'",
                         "<pre>", "</pre>", "</details>", "\u2028", "</style>", "{{x}}"])
TEXT = st.lists(NASTY | st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=30),
                max_size=6).map("".join)


def document_of(nodeid: str, message: str, output: str, *, anomaly: str = "") -> str:
    run = Run(run_id="r-1", started_at=STARTED, status=RunStatus.finished, exit_code=1, seed=3,
              counts={"failed": 1}, duration=1.0, argv=["testfleet", "run", nodeid])
    result = Result(run_id="r-1", variant_id="v", case_id="c", nodeid=nodeid, outcome=Outcome.failed,
                    worker="gw0", message=message, longrepr=f"E   {message}", stdout=output)
    series = {("worker.rss_mb", "gw0"): (np.array([0.0, 1.0]), np.array([1.0, 2.0]))}
    figures = telemetry_figures(series, [{"metric": "worker.rss_mb", "t": 1.0, "value": 2.0,
                                          "nodeid": nodeid, "message": anomaly}])
    data = ReportData(run=run, results=[result], variants={}, failures=[result], telemetry=figures)
    return render(data, plotlyjs=lambda: "/* plotly.js */")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nodeid=TEXT, message=TEXT, output=TEXT, anomaly=TEXT)
def test_any_text_stays_text(nodeid: str, message: str, output: str, anomaly: str) -> None:
    document = document_of(nodeid, message, output, anomaly=anomaly)
    page = Page(document)
    # the page keeps its shape: its three scripts, its one failure, its sections
    assert [attrs.get("id") for attrs, _ in page.scripts] == [None, "tf-figures", None]
    assert page.scripts[0][1] == "/* plotly.js */"
    assert len(page.failures) == 1
    assert page.sections == ["summary", "failures", "flaky", "exploration", "telemetry", "coverage",
                             "analysis"]
    # and every text reads back exactly as it was written (controls: the test below)
    assert nodeid in page.failures[0]
    traceback = [text for css, text in page.pres if css == "traceback"]
    assert traceback == ["\n" + f"E   {message}"]
    if output:
        assert ("", "\n" + output) in page.pres
    hover = page.figures()["figures"][0]["data"][-1]["text"]
    assert hover == [f"{nodeid}: {anomaly}"]
    # a browser ends a script at the first "</script" whatever follows it (Python's parser
    # wants the ">"): the chart data holds no "<" at all, so no text can end it early
    data = re.split("(?i)</script", document.split('id="tf-figures">', 1)[1], maxsplit=1)[0]
    assert "<" not in data and json.loads(data) == page.figures()


def test_control_characters_and_lone_surrogates_are_shown_not_sent() -> None:
    page = Page(document_of("t\x00id", "m", "\x1b[31mred\x1b[0m\x07 \udc80 done", anomaly="\ud800"))
    assert "t\u2400id" in page.failures[0]
    assert ("", "\n\u241b[31mred\u241b[0m\u2407 \ufffd done") in page.pres
    assert page.figures()["figures"][0]["data"][-1]["text"] == ["t\x00id: \ufffd"]


def test_a_thousand_long_failures_make_a_bounded_file() -> None:
    run = Run(run_id="r-big", started_at=STARTED, status=RunStatus.finished, exit_code=1,
              counts={"failed": 1000}, duration=60.0)
    noisy = "x" * 200_000
    results = [Result(run_id="r-big", variant_id=f"v{i}", case_id=f"c{i}", nodeid=f"t.py::test_{i}",
                      outcome=Outcome.failed, message=f"boom {i}", longrepr=noisy, stdout=noisy,
                      stderr=noisy, log=noisy) for i in range(1000)]
    data = ReportData(run=run, results=results, variants={}, failures=results)
    document = render(data, plotlyjs=lambda: "")
    page = Page(document)
    assert len(page.failures) == FAILURES_SHOWN
    assert all(len(text) <= TEXT_LIMIT + 200 for _, text in page.pres)
    assert document.count("characters cut here") == 4 * FAILURES_SHOWN
    assert "test_999" in document and "boom 999" in document  # the rest listed by name
    assert len(document) < 4 * FAILURES_SHOWN * (TEXT_LIMIT + 500) + 200_000
