"""The dashboard in a real browser (Debian's Chromium under Playwright).

The harness tests publish events into a hub themselves, so each step is decided by the test, not
by timing; the page's state is read back from what it shows, through Playwright's auto-waiting
``expect``. The last test is the whole path: a real ``testfleet serve``, a real ``testfleet
submit`` of a suite whose tests wait on files the test creates, and a worker killed by its pid.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from testfleet.service import pages

from .conftest import Harness, RunFeed, Server

TRACEBACK = "def test_b():\n>       assert 1 == 2\nE       assert 1 == 2\n\ntest_x.py:5: AssertionError"


def open_run(page, harness: Harness, run_id: str) -> None:
    page.goto(f"{harness.url}/#run={run_id}")
    expect(page.get_by_test_id("run-id")).to_have_text(run_id)


def count(page, outcome: str):
    return page.get_by_test_id(f"count-{outcome}").locator("b")


# ---------------------------------------------------------------- the routes (no browser)

def test_page_script_and_style_are_served(harness: Harness):
    with httpx.Client(base_url=harness.url) as client:
        index = client.get("/")
        assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
        assert 'src="static/dashboard.js"' in index.text
        names = [("dashboard.css", "text/css")] + [(f"{script}.js", "text/javascript")
                                                   for script in ("common", "charts", "panels", "dashboard")]
        for name, media in names:
            assert f'src="static/{name}"' in index.text or name.endswith(".css")
            answer = client.get(f"/static/{name}")
            assert answer.status_code == 200 and answer.headers["content-type"].startswith(media)
            assert answer.content == (pages.static_dir() / name).read_bytes()


def test_plotly_comes_from_the_installed_python_package(harness: Harness):
    plotly = pytest.importorskip("plotly")
    shipped = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    with httpx.Client(base_url=harness.url) as client:
        answer = client.get("/static/plotly.min.js")
    assert answer.status_code == 200 and answer.content == shipped.read_bytes()


@pytest.mark.parametrize("name", ["../pages.py", "..%2Fpages.py", ".hidden.js", "nothing.js", "pages.py"])
def test_only_the_shipped_files_are_served(harness: Harness, name: str):
    with httpx.Client(base_url=harness.url) as client:
        answer = client.get(f"/static/{name}")
    assert answer.status_code == 404
    assert "def " not in answer.text  # no Python source leaks


def test_page_routes_stay_out_of_the_api_schema(harness: Harness):
    paths = harness.app.openapi()["paths"]
    assert "/" not in paths and not any(path.startswith("/static") for path in paths)


# ---------------------------------------------------------------- the page over the harness

def test_page_follows_a_run_from_first_result_to_final_counts(harness: Harness, page):
    feed = RunFeed(harness.hub, "r1")
    feed.start(total=4)
    open_run(page, harness, "r1")
    expect(page.get_by_test_id("total")).to_have_text("4")
    feed.emit("running", worker=0, nodeid="test_x.py::test_a")
    expect(page.get_by_test_id("worker-test-0")).to_have_text("test_x.py::test_a")
    expect(page.get_by_test_id("queue")).to_have_text("3")  # 4 - 0 done - 1 running

    feed.result("test_x.py::test_a", worker=0)
    expect(page.get_by_test_id("done")).to_have_text("1")
    expect(count(page, "passed")).to_have_text("1")
    expect(page.get_by_test_id("eta")).to_contain_text("ETA")

    feed.result("test_x.py::test_b", "failed", worker=1, longrepr=TRACEBACK)
    feed.result("test_x.py::test_c", "failed", worker=0, final=False)  # retried: not counted yet
    feed.result("test_x.py::test_c", "passed", worker=0, flaky=True, attempt=2)
    feed.result("test_x.py::test_d", "skipped", worker=1)
    feed.end(1)
    expect(page.get_by_test_id("run-status")).to_have_text("finished")
    expect(page.get_by_test_id("done")).to_have_text("4")
    expect(count(page, "passed")).to_have_text("2")  # a flaky test passed, as the console counts it
    expect(count(page, "failed")).to_have_text("1")
    expect(count(page, "skipped")).to_have_text("1")
    expect(count(page, "flaky")).to_have_text("1")
    expect(page.get_by_test_id("exit")).to_have_text("exit code 1")
    expect(page.get_by_test_id("flaky")).to_contain_text("test_x.py::test_c")

    failure = page.get_by_test_id("failures").locator("details")
    expect(failure).to_have_count(1)
    expect(failure.locator("pre")).not_to_be_visible()  # folded until asked for
    failure.locator("summary").click()
    expect(failure.locator("pre")).to_have_text(TRACEBACK)
    # one latency per result event the page received, retried attempt included
    assert page.evaluate("window.__latencies.length") == 5


def test_a_lost_worker_and_the_consoles_word_show(harness: Harness, page):
    feed = RunFeed(harness.hub, "r2")
    feed.start(total=3)
    open_run(page, harness, "r2")
    feed.emit("running", worker=1, nodeid="test_y.py::test_crash")
    expect(page.get_by_test_id("worker-test-1")).to_have_text("test_y.py::test_crash")
    feed.emit("worker", worker=1, state="lost", detail="exit code -9")
    feed.emit("message", text="worker 1 lost while running test_y.py::test_crash")
    expect(page.get_by_test_id("worker-state-1")).to_have_text("lost (exit code -9)")
    expect(page.get_by_test_id("worker-state-0")).to_have_text("started (local)")
    expect(page.get_by_test_id("worker-test-1")).to_have_text("idle")
    expect(page.get_by_test_id("messages")).to_contain_text("worker 1 lost")


def test_reconnect_misses_nothing_and_counts_nothing_twice(harness: Harness, page):
    feed = RunFeed(harness.hub, "r3")
    feed.start(total=10)
    open_run(page, harness, "r3")
    for i in range(4):
        feed.result(f"t.py::test_{i}", worker=i % 2)
    expect(count(page, "passed")).to_have_text("4")
    expect(page.get_by_test_id("run-conn")).to_have_text("live")
    connects = harness.connects
    assert harness.drop_connections() >= 2  # the runs list's socket and the run's
    for i in range(4, 10):  # published while the page is away or coming back
        feed.result(f"t.py::test_{i}", "failed" if i == 9 else "passed", worker=i % 2)
    feed.end(1)
    expect(page.get_by_test_id("done")).to_have_text("10")
    expect(count(page, "passed")).to_have_text("9")
    expect(count(page, "failed")).to_have_text("1")
    expect(page.get_by_test_id("failures").locator("details")).to_have_count(1)
    assert harness.connects >= connects + 2  # it did come back, and from its last seq
    assert page.evaluate("window.__latencies.length") == 10


def test_reload_mid_run_rebuilds_the_same_counts(harness: Harness, page):
    feed = RunFeed(harness.hub, "r4")
    feed.start(total=6)
    open_run(page, harness, "r4")
    for i in range(3):
        feed.result(f"t.py::test_{i}", "failed" if i == 1 else "passed")
    expect(page.get_by_test_id("done")).to_have_text("3")
    page.reload()
    expect(page.get_by_test_id("done")).to_have_text("3")
    expect(count(page, "passed")).to_have_text("2")
    expect(count(page, "failed")).to_have_text("1")
    for i in range(3, 6):
        feed.result(f"t.py::test_{i}")
    feed.end(1)
    expect(page.get_by_test_id("done")).to_have_text("6")
    expect(count(page, "passed")).to_have_text("5")
    expect(count(page, "failed")).to_have_text("1")


def test_runs_list_is_live_and_selects_a_run(harness: Harness, page):
    page.goto(harness.url + "/")
    expect(page.get_by_test_id("connection")).to_have_text("connected")
    first = RunFeed(harness.hub, "run-one")
    first.start(total=2)
    second = RunFeed(harness.hub, "run-two")
    second.start(total=5)
    runs = page.get_by_test_id("runs")
    expect(runs.locator("a")).to_have_count(2)
    second.end(0)
    expect(runs.locator('a[data-run="run-two"]')).to_contain_text("exit 0")
    runs.locator('a[data-run="run-one"]').click()
    expect(page.get_by_test_id("run-id")).to_have_text("run-one")
    expect(page.get_by_test_id("total")).to_have_text("2")
    assert page.evaluate("location.hash") == "#run=run-one"


def test_telemetry_charts_grow_with_series_events(harness: Harness, page):
    feed = RunFeed(harness.hub, "r5")
    feed.start(total=1)
    open_run(page, harness, "r5")
    page.get_by_test_id("metric").scroll_into_view_if_needed()  # charts off screen are not drawn
    for step in range(3):
        for worker in (0, 1):
            base = 100.0 + step
            feed.emit("series", worker=worker, t=[base, base + 0.5], metric=["cpu_percent", "rss_bytes"],
                      value=[10.0 * worker + step, 1e6])
    expect(page.get_by_test_id("chart-0")).to_be_visible()
    expect(page.get_by_test_id("chart-1")).to_be_visible()
    expect(page.get_by_test_id("metric")).to_have_value("cpu_percent")
    page.wait_for_function("document.querySelector('[data-testid=chart-1]').data[0].y.length === 3")
    assert page.evaluate("document.querySelector('[data-testid=chart-1]').data[0].y") == [10, 11, 12]
    feed.emit("series", worker=1, t=[104.0], metric=["cpu_percent"], value=[42.0])
    page.wait_for_function("document.querySelector('[data-testid=chart-1]').data[0].y.length === 4")
    page.get_by_test_id("metric").select_option("rss_bytes")
    page.wait_for_function("document.querySelector('[data-testid=chart-0]').data[0].y[0] === 1e6")
    page.get_by_test_id("metric").select_option("cpu_percent")
    page.get_by_test_id("run-id").scroll_into_view_if_needed()  # the charts leave the screen...
    page.set_viewport_size({"width": 1280, "height": 300})
    feed.emit("series", worker=1, t=[105.0], metric=["cpu_percent"], value=[43.0])
    expect(page.get_by_test_id("done")).to_have_text("0")
    page.get_by_test_id("metric").scroll_into_view_if_needed()  # ...and come back with what they missed
    page.wait_for_function("document.querySelector('[data-testid=chart-1]').data[0].y.at(-1) === 43")


def test_exploration_counts_variants_by_source_and_rule(harness: Harness, page):
    feed = RunFeed(harness.hub, "r6")
    feed.start(total=5)
    open_run(page, harness, "r6")
    feed.emit("exploring", budget=3)
    feed.result("t.py::test_a")
    feed.result("t.py::test_a[x=1]", origin="edge:x=1")
    feed.result("t.py::test_a[x=2]", "failed", origin="rule:big_x", longrepr="E boom")
    feed.result("t.py::test_a[x=3]", origin="rule:big_x")
    feed.result("t.py::test_a[x=4]", origin="rule:small_x")
    origins = page.get_by_test_id("origins")
    expect(origins.locator("tr")).to_have_count(3)  # baseline, edge, rule
    expect(origins.locator("tr", has_text="rule")).to_contain_text("3")
    rules = page.get_by_test_id("rules")
    expect(rules.locator("tr", has_text="big_x")).to_contain_text("50.0 %")
    expect(rules.locator("tr", has_text="small_x")).to_contain_text("0.0 %")


def test_missing_endpoints_are_shown_as_not_available(harness: Harness, page):
    feed = RunFeed(harness.hub, "r7")
    feed.start(total=1)
    open_run(page, harness, "r7")
    feed.result("t.py::test_a")
    feed.end(0)
    expect(page.get_by_test_id("analysis")).to_contain_text("not available (404")
    expect(page.get_by_test_id("coverage")).to_contain_text("not available (404")


# ---------------------------------------------------------------- the page over a real server

SUITE = '''\
import os
import time
from pathlib import Path

import pytest

GO = Path({go!r})  # the browser test creates it when the gated tests may finish
VICTIM_PID = Path({pid!r})  # the victim's worker writes its pid here: the browser test kills it
VICTIM_RAN = Path({ran!r})


def wait_for(path):
    deadline = time.monotonic() + 300
    while not path.exists():  # the browser test decides when: it waits on the page, then creates the file
        assert time.monotonic() < deadline, f"{{path}} never appeared"
        time.sleep(0.02)


def test_0_first():
    pass


@pytest.mark.parametrize("i", range(4))
def test_gated(i):
    wait_for(GO)


def test_gated_failure():
    wait_for(GO)
    assert 1 + 1 == 3, "arithmetic is broken"


def test_victim():
    if VICTIM_RAN.exists():  # the retry after its worker was killed
        return
    VICTIM_RAN.touch()
    VICTIM_PID.write_text(str(os.getpid()))
    wait_for(Path(str(GO) + ".never"))
'''

WORDS = {"errors": "error", "error": "error"}


def console_counts(text: str) -> dict[str, int]:
    """The counts of the console's last summary line (``1 failed, 6 passed, 1 flaky in 3.2s``)."""
    line = [row for row in text.splitlines() if re.search(r"\d+ \w+.* in [\d.]+s", row)][-1]
    return {WORDS.get(word, word): int(n) for n, word in re.findall(r"(\d+) (\w+)", line.split(" in ")[0])}


def page_counts(page) -> dict[str, int]:
    return page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('[data-testid^=count-]')]
        .map((e) => [e.dataset.testid.slice(6), Number(e.querySelector('b').textContent)]))""")


def wait_for_file(path: Path, process: subprocess.Popen[str], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, "the submit ended before the victim ran"
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


@pytest.fixture
def patient_expect():
    expect.set_options(timeout=120_000)  # a real run: child process, collection, workers on a busy machine
    yield
    expect.set_options(timeout=5_000)  # Playwright's default, for the other tests


@pytest.mark.slow
@pytest.mark.usefixtures("patient_expect")
def test_real_server_run_seen_live_with_a_lost_worker_and_a_reload(served: Server, page, tmp_path: Path):
    project = tmp_path / "project"
    (project / "tests").mkdir(parents=True)
    go, pid_file, ran = tmp_path / "go", tmp_path / "victim.pid", tmp_path / "victim.ran"
    (project / "tests" / "test_gated.py").write_text(SUITE.format(go=str(go), pid=str(pid_file), ran=str(ran)))

    page.goto(served.url + "/")
    expect(page.get_by_test_id("connection")).to_have_text("connected")
    submit = served.start_submit(project, "tests", "-n", "2")
    try:
        link = page.get_by_test_id("runs").locator("a").first
        expect(link).to_be_visible()
        link.click()
        expect(page.get_by_test_id("total")).to_have_text("7")
        # the first result, and no other: every other test waits for the go file
        expect(page.get_by_test_id("done")).to_have_text("1")
        expect(count(page, "passed")).to_have_text("1")
        expect(page.get_by_test_id("workers")).to_contain_text("tests/test_gated.py::test_")

        page.reload()  # mid-run: the page rebuilds its counts from after=0
        expect(page.get_by_test_id("done")).to_have_text("1")
        expect(count(page, "passed")).to_have_text("1")

        go.touch()
        wait_for_file(pid_file, submit)
        os.kill(int(pid_file.read_text()), signal.SIGKILL)
        expect(page.get_by_test_id("workers").locator("td.lost")).to_have_count(1)
        expect(page.get_by_test_id("messages")).not_to_be_empty()

        output, _ = submit.communicate(timeout=300)
    finally:
        if submit.poll() is None:
            submit.kill()
    expect(page.get_by_test_id("run-status")).to_have_text("finished")
    expect(page.get_by_test_id("exit")).to_have_text(f"exit code {submit.returncode}")
    expect(page.get_by_test_id("done")).to_have_text("7")
    expected = console_counts(output)
    assert expected.get("failed") == 1 and expected.get("passed", 0) >= 5, output
    assert page_counts(page) == expected, output
    expect(page.get_by_test_id("flaky")).to_contain_text("test_victim")  # its retry after the kill passed
    expect(page.get_by_test_id("failures")).to_contain_text("arithmetic is broken")

    page.reload()  # after the end: the same counts again, from the same events
    expect(page.get_by_test_id("done")).to_have_text("7")
    assert page_counts(page) == expected


def test_a_run_the_server_does_not_know_is_not_followed_forever(served: Server, page):
    page.goto(served.url + "/#run=no-such-run")
    expect(page.get_by_test_id("run-conn")).to_have_text("not live")
    expect(page.get_by_test_id("run-summary")).to_contain_text("no events of this run: not available (404")


FLIP_SUITE = '''\
from pathlib import Path

FLAG = Path({flag!r})


def test_flip():
    assert not FLAG.exists(), "the flag is up"


def test_steady():
    pass
'''


@pytest.mark.slow
@pytest.mark.usefixtures("patient_expect")
def test_a_finished_run_shows_its_analysis_coverage_and_diff(served: Server, page, tmp_path: Path):
    project = tmp_path / "project"
    (project / "tests").mkdir(parents=True)
    flag = tmp_path / "flag"
    (project / "tests" / "test_flip.py").write_text(FLIP_SUITE.format(flag=str(flag)))
    flag.touch()
    assert served.start_submit(project, "tests").wait(timeout=300) == 1  # test_flip fails
    flag.unlink()
    assert served.start_submit(project, "tests").wait(timeout=300) == 0  # ...and is fixed

    page.goto(served.url + "/")
    runs = page.get_by_test_id("runs").locator("a")
    expect(runs).to_have_count(2)
    newest, oldest = runs.nth(0).get_attribute("data-run"), runs.nth(1).get_attribute("data-run")
    runs.nth(0).click()
    expect(page.get_by_test_id("run-status")).to_have_text("finished")
    expect(count(page, "passed")).to_have_text("2")
    expect(page.get_by_test_id("analysis")).to_contain_text("Failure clusters")
    expect(page.get_by_test_id("coverage")).to_contain_text("baseline")
    # the events carry no variant source here: the panel takes the store's count at the end
    expect(page.get_by_test_id("origins").locator("tr", has_text="baseline")).to_contain_text("2")
    expect(page.get_by_test_id("diff-base")).to_have_value(oldest)
    page.get_by_role("button", name="Compare").click()
    fixed = page.get_by_test_id("diff").locator("dt", has_text="fixed").locator("xpath=following-sibling::dd[1]")
    expect(fixed).to_contain_text("test_flip")
    assert newest != oldest
