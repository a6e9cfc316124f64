"""``testfleet submit`` and ``testfleet run --dashboard``: send a run to a server, show its console
text as it comes, and exit with its exit code (pytest's).

The console text is the child run's own output (a terminal of this width when this one is a
terminal), so a submitted run reads exactly like ``testfleet run``. The events come over the
run's WebSocket; a dropped connection is reopened from the last sequence number seen, so nothing
is shown twice or lost. Ctrl-C asks the server to cancel the run and keeps showing it until it
has ended (exit 2), as Ctrl-C does to a local run.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from testfleet.errors import TestfleetError, UsageError

__all__ = ["follow", "run_with_dashboard", "submit"]

USAGE = 4
INTERRUPTED = 2
INTERNAL = 3
DEFAULT_SERVER = "http://127.0.0.1:8642"


def _headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _ws_url(server: str, path: str, after: int) -> str:
    parts = urlsplit(server)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}{path}?{urlencode({'after': after})}"


def _error_text(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return f"{response.status_code} {response.text[:200]}"
    where = error.get("place")
    text = (f"[{where}] " if where else "") + str(error.get("message"))
    if error.get("expected"):
        text += f" (expected {error['expected']})"
    return f"{response.status_code}: {text}"


REPORT_OPTIONS = ("--junitxml", "--json", "--md", "--html", "--codequality")


class ReportTarget:
    """Where a submitted run's report files land here: a relative path under the project's root
    (never outside it), an absolute one only when this client asked for exactly that path."""

    def __init__(self, root: Path, argv: list[str]) -> None:
        self.root = root.resolve()
        self.asked: set[Path] = set()
        head = argv[:argv.index("--")] if "--" in argv else argv
        for i, arg in enumerate(head):
            name, sep, value = arg.partition("=")
            if name in REPORT_OPTIONS:
                given = value if sep else (head[i + 1] if i + 1 < len(head) else "")
                if given:
                    self.asked.add((self.root / given).resolve())

    def place(self, shown: str) -> Path | None:
        target = (self.root / shown).resolve()  # an absolute `shown` stays itself
        if target in self.asked or (not Path(shown).is_absolute() and target.is_relative_to(self.root)):
            return target
        return None

    def write(self, shown: str, content: str) -> None:
        from testfleet.atomic import atomic_write_text

        target = self.place(shown)
        if target is None:
            sys.stderr.write(f"not writing the server's report {shown}: not a path this run asked for\n")
            return
        atomic_write_text(target, content)


def follow(server: str, run_id: str, token: str | None, *, write: Callable[[str], Any] | None = None,
           on_event: Callable[[dict[str, Any]], None] | None = None, reports: ReportTarget | None = None) -> int:
    """Show run ``run_id``'s console text until its end; its exit code. Report files it sends
    are written through ``reports`` (None: not written, as when the run ran in this folder)."""
    from websockets.exceptions import ConnectionClosed, InvalidStatus
    from websockets.sync.client import connect

    write = write or _write_stdout
    after, failures, cancel_sent = 0, 0, False
    while True:
        try:
            with connect(_ws_url(server, f"/ws/runs/{run_id}", after), additional_headers=_headers(token),
                         proxy=None, open_timeout=30, max_size=None) as websocket:
                failures = 0
                while True:
                    try:
                        message = websocket.recv()
                    except KeyboardInterrupt:
                        if cancel_sent:
                            raise
                        cancel_sent = True
                        _cancel(server, run_id, token)
                        continue
                    event = json.loads(message)
                    after = max(after, int(event.get("seq", after)))
                    if on_event is not None:
                        on_event(event)
                    if event["kind"] == "console":
                        write(event["text"])
                    elif event["kind"] == "report" and reports is not None:
                        reports.write(str(event["path"]), str(event["content"]))
                    elif event["kind"] == "end":
                        return int(event["exit_code"])
        except InvalidStatus as exc:
            raise UsageError(f"the server refused the run's events: HTTP {exc.response.status_code}",
                             source=server, place="token" if exc.response.status_code in (401, 403) else None,
                             expected="the server's token (--token or $TESTFLEET_TOKEN)") from None
        except (ConnectionClosed, OSError, TimeoutError) as exc:
            failures += 1
            if failures > 5:
                raise UsageError(f"lost the server: {exc}", source=server) from None
            time.sleep(min(2.0, 0.2 * 2 ** failures))  # back off, then catch up from `after`


def _write_stdout(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _cancel(server: str, run_id: str, token: str | None) -> None:
    sys.stderr.write("\ninterrupted: cancelling the run on the server\n")
    try:
        httpx.post(f"{server.rstrip('/')}/runs/{run_id}/cancel", headers=_headers(token), timeout=30)
    except httpx.HTTPError:
        pass


def submit(argv: list[str], *, server: str | None = None, token: str | None = None,
           root: Path | None = None) -> int:
    """Pack the project in ``root`` (default: here), submit it with ``testfleet run`` arguments
    ``argv``, show the run and return its exit code; 4 with one message when it cannot."""
    from testfleet.service.archive import pack

    server = (server or os.environ.get("TESTFLEET_SERVER") or DEFAULT_SERVER).rstrip("/")
    token = token or os.environ.get("TESTFLEET_TOKEN") or None
    root = root or Path.cwd()
    try:
        if urlsplit(server).scheme not in ("http", "https") or not urlsplit(server).netloc:
            raise UsageError(f"{server!r} is not a server URL", place="--server",
                             expected="http://HOST:PORT")
        data = pack(root)
        terminal = sys.stdout.isatty()
        params: list[tuple[str, str | int | float | bool | None]] = [("arg", a) for a in argv]
        params += [("tty", "true" if terminal else "false"),
                   ("columns", max(20, min(1000, shutil.get_terminal_size().columns)))]
        try:
            response = httpx.post(f"{server}/runs", params=params, content=data, timeout=120,
                                  headers={**_headers(token), "Content-Type": "application/gzip"})
        except httpx.HTTPError as exc:
            raise UsageError(f"cannot reach the server: {exc}", source=server, place="--server",
                             expected="a running `testfleet serve`") from None
        if response.status_code != 201:
            raise UsageError(f"the server refused the run: {_error_text(response)}", source=server)
        run_id = response.json()["run_id"]
        return follow(server, run_id, token, reports=ReportTarget(root, argv))
    except TestfleetError as exc:
        sys.stderr.write(f"ERROR: {exc}\n")
        return USAGE


def run_with_dashboard(argv: list[str], *, store: str | None = None) -> int:
    """``testfleet run ... --dashboard``: a private server on 127.0.0.1 for this one run."""
    from testfleet.service.runs import SubmittedRun, console_env, new_run_id
    from testfleet.service.server import ServerOptions, serving
    from testfleet.settings import load_settings

    argv = [a for a in argv if a != "--dashboard"]
    cwd = Path.cwd()
    try:
        settings, _source = load_settings([], {"store": store} if store else {}, cwd=cwd)
        options = ServerOptions(host="127.0.0.1", port=0)
        with serving(options, str(Path(settings.store).resolve())) as served:
            run_id = new_run_id()
            sys.stderr.write(f"dashboard: {served.url}/#run={run_id}\n")
            env = console_env(sys.stdout.isatty(), shutil.get_terminal_size().columns)
            # the store option is the server's: the run's own copy of it is the server's business
            argv = _without_store(argv)
            served.state.runs.submit(SubmittedRun(run_id=run_id, argv=argv, project=cwd, owned=False, env=env))
            return follow(served.url, run_id, served.token)
    except TestfleetError as exc:
        sys.stderr.write(f"ERROR: {exc}\n")
        return USAGE


def _without_store(argv: list[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg == "--":
            return out + argv[i:]
        if arg == "--store":
            skip = True
            continue
        if arg.startswith("--store="):
            continue
        out.append(arg)
    return out
