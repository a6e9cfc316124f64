"""What a run prints: live progress while it runs, then pytest's failure sections and summary.

On a terminal (and unless ``-q``) a rich live panel shows done/total, outcome counts, ETA and what
each worker is running. Elsewhere (CI logs) it prints pytest-style progress letters with a
percentage at the end of each line, as pytest-xdist does. ``-v`` prints one line per result.
After the run it prints FAILURES/ERRORS sections with each test's traceback and captured output,
pytest's "short test summary info" and the final summary line.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from testfleet.model import FAILURE_OUTCOMES, Outcome, Result
from testfleet.reporting.short_summary import DEFAULT_REPORTCHARS, summary_lines
from testfleet.reporting.variant_names import params_label, variant_name

if TYPE_CHECKING:
    from testfleet.execution.protocol import Series

LETTERS = {"passed": ".", "failed": "F", "error": "E", "skipped": "s", "xfailed": "x", "xpassed": "X",
           "timeout": "T", "crashed": "C"}
STYLES = {"passed": "green", "failed": "red", "error": "red", "skipped": "yellow", "xfailed": "yellow",
          "xpassed": "yellow", "timeout": "red", "crashed": "red", "flaky": "yellow", "rerun": "yellow"}


# What one traceback or captured stream may show on the console (pytest prints captured output
# whole, and a test printing 8 MB made the report take half a minute): the first and last lines.
CLIP_LINES = 200
CLIP_CHARS = 20_000


def clip(text: str, max_lines: int = CLIP_LINES, max_chars: int = CLIP_CHARS) -> str:
    """``text`` whole when it is short, else its head and tail around a line that says how much
    is left out and where the whole text is."""
    if len(text) <= max_chars and text.count("\n") < max_lines:
        return text
    half_chars, half_lines = max_chars // 2, max_lines // 2
    head = text[:half_chars].split("\n")[:half_lines]
    tail = text[-half_chars:].split("\n")[-half_lines:]
    shown = sum(len(line) + 1 for line in head + tail)
    hidden_lines = max(text.count("\n") + 1 - len(head) - len(tail), 0)
    lines = f" ({hidden_lines:,} lines)" if hidden_lines else ""
    note = (f"... {len(text) - shown:,} characters{lines} not shown; the whole text is in "
            "the store (testfleet show) and the JSON/JUnit reports; -vv prints it all ...")
    return "\n".join([*head, note, *tail])


class ConsoleReporter:
    """The run's :class:`~testfleet.execution.orchestrator.Listener` for humans."""

    def __init__(self, verbosity: int = 0, console: Console | None = None, live: bool | None = None) -> None:
        self.console = console or Console(highlight=False, soft_wrap=False)
        self.verbosity = verbosity
        self.live_asked = live
        self.use_live = self.console.is_terminal and verbosity >= 0 if live is None else live
        self.reportchars = DEFAULT_REPORTCHARS
        self.counts: Counter[str] = Counter()
        self.running: dict[str, str | None] = {}
        self.total = 0
        self.done = 0
        self.started = time.monotonic()
        self.column = 0
        self.live: Live | None = None
        self.lock = threading.Lock()
        self.exploring = False  # the total grows as variants are proposed: no 100 % mid-run
        self.shown_percent = 0  # never printed smaller later, though the total grows while exploring

    # -- listener -----------------------------------------------------------------------------
    def on_terminal(self, options: dict) -> None:
        """pytest's own view of the terminal options (``addopts`` included): ``-r``, ``-q``/``-v``."""
        self.reportchars = str(options.get("reportchars", self.reportchars))
        self.verbosity = int(options.get("verbosity", self.verbosity))
        if self.live_asked is None:
            self.use_live = self.console.is_terminal and self.verbosity >= 0

    def on_collected(self, total: int, deselected: int, workers: int) -> None:
        self.total = total
        self.started = time.monotonic()
        text = f"collected {total + deselected} item{'s' if total + deselected != 1 else ''}"
        if deselected:
            text += f" / {deselected} deselected / {total} selected"
        if self.verbosity >= 0:
            self.console.print(f"{text}; {workers} worker{'s' if workers != 1 else ''}")
        if self.use_live and total:
            self.live = Live(get_renderable=self._panel, console=self.console, refresh_per_second=8,
                             transient=True)
            self.live.start()

    def on_running(self, worker_id: str, nodeid: str | None) -> None:
        self.running[worker_id] = nodeid

    def on_result(self, result: Result, done: int, total: int) -> None:
        self.done, self.total = done, total
        if not result.final:
            self.counts["rerun"] += 1
            word = "RERUN"
        else:
            for category in result.categories or [result.outcome.value]:
                self.counts[category] += 1
            word = result.outcome.value.upper()
        if self.verbosity > 0:
            style = STYLES.get(result.outcome.value, "")
            pct = f"[{self._percent(done, total):3d}%]"
            self.console.print(f"[dim]\\[{result.worker}] {pct}[/dim] [{style}]{word}[/{style}] "
                               f"{escape(result.nodeid)}" + (" [yellow](flaky)[/yellow]" if result.flaky else ""))
        elif self.live is None and self.verbosity <= 0:  # pytest prints letters under -q too
            self._letter(LETTERS.get(result.outcome.value, "?") if result.final else "R", done, total)

    def on_message(self, text: str) -> None:
        with self.lock:
            if self.column:
                sys.stdout.write("\n")
                sys.stdout.flush()
                self.column = 0
        self.console.print(f"[yellow]{escape(text)}[/yellow]")

    def on_worker(self, worker_id: str, state: str, detail: str) -> None:
        """Workers starting and lost: the console says losses through on_message already."""

    def on_series(self, worker_id: str, columns: Series) -> None:
        """Telemetry is not drawn on the terminal."""

    def on_exploring(self, budget: str) -> None:
        self.exploring = True
        self.on_message(f"exploring after the baseline: budget {budget}")

    def _letter(self, letter: str, done: int, total: int) -> None:
        with self.lock:
            sys.stdout.write(letter)
            self.column += 1
            if self.column >= 70 or (done == total and not self.exploring):
                sys.stdout.write(" " * (70 - self.column) + f" [{self._percent(done, total):3d}%]\n")
                self.column = 0
            sys.stdout.flush()

    def _percent(self, done: int, total: int) -> int:
        """Done as a percentage that never goes back: exploration adds to the total as it runs, so
        done/total can fall (99 % then 98 %); and 100 % only when nothing is left."""
        percent = 100 * done // max(total, 1)
        if done < total or self.exploring:
            percent = min(percent, 99)
        self.shown_percent = max(self.shown_percent, percent)
        return self.shown_percent

    def _panel(self) -> Group:
        elapsed = time.monotonic() - self.started
        eta = elapsed / self.done * (self.total - self.done) if self.done else 0.0
        head = Table.grid(padding=(0, 2))
        head.add_row(ProgressBar(total=max(self.total, 1), completed=self.done, width=40),
                     f"{self.done}/{self.total}", f"{elapsed:.1f}s", f"ETA {eta:.0f}s" if self.done else "ETA -")
        counts = Text("  ".join(f"{n} {k}" for k, n in sorted(self.counts.items())) or "waiting for results")
        workers = Table.grid(padding=(0, 1))
        for worker_id, nodeid in sorted(self.running.items()):
            workers.add_row(Text(worker_id, style="cyan"), Text(nodeid or "idle", style="dim" if not nodeid else ""))
        return Group(head, counts, workers)

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
        if self.column:  # an exploring run's last line: its total is only known now
            end = " " * (70 - self.column) + f" [{max(self.shown_percent, 100 * self.done // max(self.total, 1)):3d}%]"
            sys.stdout.write((end if self.exploring and self.done >= self.total else "") + "\n")
            self.column = 0

    # -- the end ------------------------------------------------------------------------------
    def finish(self, results: Iterable[Result], collect_errors: list[dict], summary: str,
               failed: bool, messages_not_run: list[str], warnings: list[dict] | None = None,
               anomalies: list[dict] | None = None, run_id: str = "",
               exploration: dict | None = None, resilience: list[dict] | None = None) -> None:
        self.stop()
        final = [r for r in results if r.final]

        def rule(title: str, style: str = "") -> Rule:
            return Rule(title, characters="=", style=style)

        if collect_errors:
            self.console.print(rule("ERRORS"))
            for error in collect_errors:
                self.console.print(Rule(Text(f"ERROR collecting {error['nodeid']}"), characters="_", style="red"))
                self.console.print(Text(error["longrepr"]))
        from testfleet.reporting.exploration import explored_failures, print_exploration

        failing = [r for r in final if r.outcome in FAILURE_OUTCOMES or "error" in r.categories]
        plain, grouped = explored_failures(failing, exploration)
        errors = [r for r in plain if r.outcome is Outcome.error or "error" in r.categories]
        failures = [r for r in plain if r.outcome in FAILURE_OUTCOMES and r.outcome is not Outcome.error]
        variants = (exploration or {}).get("variants", {})
        for title, group in (("ERRORS", errors), ("FAILURES", failures)):  # pytest shows them under -q too
            if not group:
                continue
            self.console.print(rule(title))
            for result in group:
                self._section(result)
        if self.verbosity >= 0:
            if grouped:
                self.console.print(rule("EXPLORED FAILURES"))
                for result, count, minimal in grouped:
                    variant = variants[result.variant_id]
                    self._section(result, nodeid=variant_name(result.nodeid, variant["params"], variant.get("origin")))
                    more = f"{count} failing variant{'s' if count != 1 else ''} like this one"
                    if minimal:
                        more += f"; {minimal['message']}"
                    instance = variants[result.variant_id].get("instance")
                    if instance:
                        more += (f"\ninstance {instance['instance']} config {{{params_label(instance['config'])}}}"
                                 + (f" (snapshot {instance['snapshot'][:12]})" if instance["snapshot"] else ""))
                    self.console.print(Text(more, style="cyan"))
            if exploration:
                print_exploration(self.console, exploration)
        if warnings and self.verbosity >= 0:
            self._warnings_summary(warnings)
        if anomalies and self.verbosity >= 0:
            self._anomalies(anomalies, run_id)
        if resilience and self.verbosity >= 0:
            self._resilience(resilience)
            from testfleet.execution.handoff import summary as handoff_summary

            if handoff := handoff_summary(resilience):  # speculative copies of stragglers
                self.console.print(Text(handoff, style="cyan"), soft_wrap=True)
        if messages_not_run and self.verbosity >= 0:
            self.console.print(f"[yellow]{len(messages_not_run)} test(s) not run (stopped early)[/yellow]")
        # pytest cuts a failure's message to the terminal's width, except on CI or with -vv
        on_ci = any(name in os.environ for name in ("CI", "BUILD_NUMBER"))
        lines = summary_lines([r for r in final if r in plain or r.outcome not in FAILURE_OUTCOMES],
                              collect_errors, self.reportchars,
                              None if on_ci or self.verbosity >= 2 else self.console.width)
        for result, count, minimal in grouped:
            variant = variants[result.variant_id]
            name = (variant_name(result.nodeid, minimal["minimal_params"], "minimal") if minimal
                    else variant_name(result.nodeid, variant["params"], variant.get("origin")))
            lines.append(f"[red]FAILED[/red] {escape(name)}"
                         f" - {escape(result.message.strip().splitlines()[0] if result.message.strip() else '')}"
                         f" [dim]({count} failing variant{'s' if count != 1 else ''}"
                         f"{', minimal' if minimal else ''})[/dim]")
        if lines:
            self.console.print(rule("short test summary info"))
            for line in lines:
                self.console.print(line, soft_wrap=True)
        style = "red" if failed else ("yellow" if not final else "green")
        if self.verbosity == -1:  # pytest -q: the bare line; -qq: none
            self.console.print(Text(summary, style=style))
        elif self.verbosity >= 0:
            self.console.print(rule(summary, style))

    def _anomalies(self, anomalies: list[dict], run_id: str, shown: int = 20) -> None:
        """What the telemetry watch flagged: outlying executions and probable leaks."""
        self.console.print(Rule("telemetry anomalies", characters="=", style="yellow"))
        for event in anomalies[:shown]:
            variant = f" [dim](variant {event['variant_id']})[/dim]" if event.get("variant_id") else ""
            self.console.print(Text.assemble((f"{event['kind'].upper():8} ", "yellow"),
                                             f"{event.get('nodeid') or event.get('case_id')}: ",
                                             event.get("message", "")) + Text.from_markup(variant),
                               soft_wrap=True)
        more = len(anomalies) - shown
        hint = f"testfleet telemetry {run_id or 'last'}"
        self.console.print(f"[dim]{f'... and {more} more; ' if more > 0 else ''}details: {hint}[/dim]")

    def _resilience(self, events: list[dict], shown: int = 20) -> None:
        """Circuit breakers that changed state and the recovery levels above a retry."""
        kept = [e for e in events if e["kind"] == "breaker" or e.get("level", 0) >= 3]
        blamed = [e for e in events if e["kind"] == "injected_failure"]
        if not kept and not blamed:
            return
        self.console.print(Rule("circuit breakers and recovery", characters="=", style="yellow"))
        for event in kept[:shown]:
            if event["kind"] == "breaker":
                line = Text.assemble(("BREAKER ", "yellow"), event.get("message", ""))
            else:
                line = Text.assemble((f"LEVEL {event['level']} ", "yellow"),
                                     f"{event['action']} {event['target']}: {event['reason']}")
            self.console.print(line, soft_wrap=True)
        retries = sum(1 for e in events if e["kind"] == "recovery" and e.get("level", 0) < 3)
        more = len(kept) - shown
        tail = [f"{more} more" if more > 0 else "", f"{retries} tests retried (levels 1-2)" if retries else "",
                f"{len(blamed)} failure{'s' if len(blamed) != 1 else ''} during injected network errors judged "
                f"infrastructure errors (testfleet show RUN --events says which)" if blamed else ""]
        if any(tail):
            self.console.print(f"[dim]{'; '.join(t for t in tail if t)}[/dim]")

    def _warnings_summary(self, warnings: list[dict]) -> None:
        """pytest's "warnings summary": each distinct warning once, with the tests that raised it."""
        self.console.print(Rule("warnings summary", characters="=", style="yellow"))
        grouped: dict[str, list[str]] = {}
        for w in warnings:
            text = f"{w['filename']}:{w['lineno']}: {w['category']}: {w['message']}"
            grouped.setdefault(text, []).append(w.get("nodeid") or "")
        for text, nodeids in grouped.items():
            named = [n for n in dict.fromkeys(nodeids) if n]
            for nodeid in named[:5]:
                self.console.print(escape(nodeid))
            if len(named) > 5:
                self.console.print(f"  ... and {len(named) - 5} more")
            self.console.print(Text("  " + text + "\n"))
        self.console.print("-- Docs: https://docs.pytest.org/en/stable/how-to/capture-warnings.html")

    def _section(self, result: Result, nodeid: str | None = None) -> None:
        """One test's part of FAILURES/ERRORS: each failed subtest's own section first, as pytest
        reports them, then the test's (when the test itself failed). ``nodeid``: the name to show
        (an explored variant's, with its values)."""
        name = (nodeid or result.nodeid).split("::", 1)[-1].replace("::", ".")
        subtests = [sub for sub in (result.phases.get("call") or {}).get("subtests", ())
                    if sub.get("outcome") == "failed"]
        for sub in subtests:
            self._block(f"{name} {sub.get('description', '')}", sub.get("longrepr") or sub.get("message", ""),
                        sub.get("stdout", ""), sub.get("stderr", ""), sub.get("log", ""))
        if subtests and not result.longrepr:
            return  # only subtests failed; the test itself passed
        if result.outcome is Outcome.error or (result.when in ("setup", "teardown")):
            name = f"ERROR at {result.when or 'setup'} of {name}"
        self._block(name, result.longrepr or result.message, result.stdout, result.stderr, result.log)

    def _block(self, title: str, text: str, stdout: str, stderr: str, log: str) -> None:
        self.console.print(Rule(Text(title), characters="_", style="red"))  # "[x] (i=1)" is no markup
        self._text(text)
        for stream, captured in (("stdout", stdout), ("stderr", stderr), ("log", log)):
            if captured:
                self.console.print(Rule(f"Captured {stream}", characters="-"))
                self._text(captured.rstrip("\n"))

    def _text(self, text: str) -> None:
        """A traceback or captured output: clipped unless ``-vv`` (the store and the reports keep
        it whole); whole text goes out as it is, not through rich, which would lay out megabytes."""
        if self.verbosity >= 2:
            self.console.file.write(text + "\n")
            self.console.file.flush()
        else:
            self.console.print(Text(clip(text)))
