"""`testfleet run` notifies when it ends, and a failed delivery never changes its result."""

from __future__ import annotations

from pathlib import Path

import pytest
from execution.conftest import make_suite, run_testfleet

from testfleet.store.db import Store
from testfleet.store.telemetry import TelemetryStore

pytestmark = pytest.mark.slow

SUITE = {
    "tests/test_app.py": """
        def test_ok():
            pass


        def test_broken():
            assert 1 == 2, "broken"
        """,
}


def test_a_run_notifies_and_a_failed_delivery_is_stored_and_leaves_the_exit_code(tmp_path: Path, service) -> None:
    receiver = service(lambda request: (200, "ok"))
    broken = service(lambda request: (500, "down"))
    settings = f"""
        [notify]
        attempts = 2
        backoff = 0.01
        deadline = 20

        [[notify.targets]]
        kind = "webhook"
        name = "ci"
        url = "{receiver.url}/hook"
        secret_env = "HOOK_SECRET"

        [[notify.targets]]
        kind = "slack"
        url_env = "SLACK_URL"
        """
    root = make_suite(tmp_path / "p", {**SUITE, "testfleet.toml": settings})
    ran = run_testfleet(root, workers=1, env={"HOOK_SECRET": "k", "SLACK_URL": f"{broken.url}/services/x"})
    assert ran.returncode == 1, ran.log  # the tests' verdict, not the delivery's
    warnings = [line for line in ran.stderr.splitlines() if line.startswith("WARNING: notification")]
    assert warnings == [line for line in warnings if "slack#1 (slack) not delivered after 2 attempts: HTTP 500" in line]
    assert len(warnings) == 1, ran.log
    (request,) = receiver.requests
    body = request.json()
    assert body["run"]["counts"] == {"failed": 1, "passed": 1}
    assert body["run"]["new_failures"] == ["tests/test_app.py::test_broken"]
    assert len(broken.requests) == 2
    with Store.open(ran.store, read_only=True) as db:
        run_id = db.get_run("last").run_id
        events = TelemetryStore(db).events(run_id, kinds=["delivery"])
    assert sorted((e["target"], e["ok"], e["attempts"]) for e in events) == [("ci", True, 1), ("slack#1", False, 2)]


def test_a_malformed_notify_table_stops_the_run_before_it_starts(tmp_path: Path) -> None:
    root = make_suite(tmp_path / "p", {**SUITE, "testfleet.toml": '[[notify.targets]]\nkind = "slack"\n'
                                                                  'url = "https://hooks.slack.com/x"\n'})
    ran = run_testfleet(root, workers=1)
    assert ran.returncode == 4, ran.log
    assert ran.stderr == (f"ERROR: {root / 'testfleet.toml'} [notify]: targets[0].url: a Slack webhook URL is a "
                          "secret and is not read from the file (expected url_env naming the environment variable "
                          "that holds it)\n")
    assert not ran.store.exists()  # nothing ran, nothing was written
