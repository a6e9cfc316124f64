"""The run's own sections: summary, failures (tracebacks and captured output), flaky, slowest.

Each function returns HTML; every piece of user text goes through :func:`text.esc`. Long text is
cut (:data:`TEXT_LIMIT` characters per block, with a note of how much) and only the first
:data:`FAILURES_SHOWN` failures are shown whole, so a run with a thousand failures still makes a
file a browser opens at once; the store keeps every text whole.
"""

from __future__ import annotations

from typing import Any

from testfleet.model import Outcome, Result
from testfleet.reporting.html.gather import ReportData
from testfleet.reporting.html.text import cut, esc
from testfleet.reporting.markdown import first_line
from testfleet.reporting.summary import format_duration, ordered_words, summary_line
from testfleet.reporting.variant_names import params_label, variant_name

__all__ = ["TEXT_LIMIT", "failures_section", "flaky_section", "pre", "slowest_section",
           "summary_section", "verdict"]

TEXT_LIMIT = 8_000      # characters of one traceback or one captured stream
FAILURES_SHOWN = 100    # failures shown with their text; the rest are listed by name
OPEN_FAILURES = 10      # shown unfolded when the page opens
_VERDICT = {0: "passed", 1: "failed", 2: "interrupted", 3: "internal error", 4: "usage error",
            5: "no tests ran"}


def verdict(data: ReportData) -> str:
    code = data.run.exit_code
    return _VERDICT.get(code, f"exit code {code}") if code is not None else data.run.status.value


def pre(text: str, css: str = "", limit: int = TEXT_LIMIT) -> str:
    """``text`` in a ``<pre>``, cut in the middle past ``limit`` characters with a note."""
    head, tail, gone = cut(text, limit)
    body = esc(head)
    if gone:
        body += (f'<span class="cut">[… {gone:,} characters cut here; the store keeps the '
                 f"whole text …]</span>{esc(tail)}")
    # a newline right after <pre> is dropped by HTML parsers: this one, so the text's own stays
    return f'<pre class="{css}">\n{body}</pre>' if css else f"<pre>\n{body}</pre>"


def summary_section(data: ReportData) -> str:
    run = data.run
    words = verdict(data)
    css = "verdict-passed" if run.exit_code == 0 else "verdict-failed"
    line = summary_line(run.counts, run.duration, run.flaky)
    facts = [("run", f"<code>{esc(run.run_id)}</code>"),
             ("status", f"{esc(run.status.value)}, exit code {esc(run.exit_code)}"),
             ("started", esc(f"{run.started_at:%Y-%m-%d %H:%M:%S %Z}")),
             ("wall time", esc(format_duration(run.duration))),
             ("workers", esc(f"{run.workers} ({run.backend})")),
             ("seed", f"<code>{esc(run.seed)}</code>"),
             ("git sha", f"<code>{esc(run.git_sha)}</code>" if run.git_sha else
              '<span class="muted">not a git checkout</span>'),
             ("collected", esc(f"{run.collected} ({run.deselected} deselected)")),
             ("command", f"<code>{esc(' '.join(run.argv))}</code>"),
             ("reproduce", f"<code>{esc(' '.join(['testfleet run', *run.paths, f'--seed {run.seed}']))}"
                           "</code>")]
    rows = "".join(f"<tr><td>{esc(w)}</td><td class=\"num\">{run.counts[w]}</td></tr>"
                   for w in ordered_words(run.counts))
    if run.flaky:
        rows += f'<tr><td class="outcome-flaky">flaky</td><td class="num">{run.flaky}</td></tr>'
    counts = f'<table class="counts"><tr><th>outcome</th><th class="num">count</th></tr>{rows}</table>' \
        if rows else ""
    return (f'<section id="summary"><h1>testfleet run {esc(run.run_id)}: '
            f'<span class="{css}">{esc(words)}</span></h1>'
            f'<p class="summary-line {css}">{esc(line)}</p>{counts}'
            '<dl class="facts">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
            + "</dl></section>")


def _label(result: Result) -> str:
    if result.outcome is Outcome.error or result.when in ("setup", "teardown"):
        return f"ERROR at {result.when or 'setup'}" if result.outcome is Outcome.error else "ERROR"
    return result.outcome.value.upper()


def _traceback(result: Result) -> str:
    """The test's own traceback, after those of its failed subtests (as pytest shows them)."""
    subtests = [sub for sub in (result.phases.get("call") or {}).get("subtests", ())
                if sub.get("outcome") == "failed"]
    parts = [f"--- subtest {sub.get('description', '')}\n{sub.get('longrepr') or sub.get('message', '')}"
             for sub in subtests]
    own = result.longrepr or result.message
    return "\n\n".join(parts + ([own] if own else []))


def failure_block(result: Result, name: str, index: int, extra: str = "") -> str:
    """One failure: a foldable block with its traceback and captured output, each cut."""
    headline = first_line(result.message, result.longrepr)
    where = f"{result.worker}, attempt {result.attempt}, {result.duration:.2f}s"
    opened = " open" if index < OPEN_FAILURES else ""
    parts = [f'<details class="failure" id="failure-{index + 1}"{opened}><summary>'
             f'<span class="outcome-{esc(result.outcome.value)}">{esc(_label(result))}</span> '
             f"<code>{esc(name)}</code>" + (f" — {esc(headline)}" if headline else "")
             + f' <span class="muted">({esc(where)})</span></summary>', extra,
             pre(_traceback(result), "traceback")]
    for stream in ("stdout", "stderr", "log"):
        captured = getattr(result, stream)
        if captured:
            lines = captured.count("\n") + (not captured.endswith("\n"))
            parts.append(f"<details class=\"captured\"><summary>Captured {stream} "
                         f"({lines:,} line{'s' if lines != 1 else ''}, {len(captured):,} characters)"
                         f"</summary>{pre(captured.rstrip(chr(10)))}</details>")
    return "".join(parts) + "</details>"


def failures_section(data: ReportData) -> str:
    items = data.failures
    explored = data.explored
    if not items and not explored:
        return '<section id="failures"><h2>Failures</h2><p>No test failed.</p></section>'
    parts = [f'<section id="failures"><h2>Failures ({len(items)})</h2>']
    for index, result in enumerate(items[:FAILURES_SHOWN]):
        parts.append(failure_block(result, result.nodeid, index))
    rest = items[FAILURES_SHOWN:]
    if rest:
        parts.append(f"<p>{len(rest):,} more failures, by name (their text is in the store: "
                     f"<code>testfleet show {esc(data.run.run_id)}</code>):</p><table>"
                     + "".join(f'<tr><td class="outcome-{esc(r.outcome.value)}">{esc(r.outcome.value)}'
                               f"</td><td><code>{esc(r.nodeid)}</code></td>"
                               f"<td>{esc(first_line(r.message, r.longrepr))}</td></tr>" for r in rest)
                     + "</table>")
    if explored:
        parts.append(f'<h3 id="explored-failures">Explored failures ({len(explored)} distinct)</h3>')
        for offset, (result, count, minimal) in enumerate(explored[:FAILURES_SHOWN]):
            variant = data.variants.get(result.variant_id, {})
            name = variant_name(result.nodeid, variant.get("params"), variant.get("origin"))
            note = f"{count} failing variant{'s' if count != 1 else ''} like this one"
            if minimal:
                note += f"; {minimal.get('message', '')}"
                note += f"; minimal variant {{{params_label(minimal.get('minimal_params') or {})}}}"
            note += f"; replay: testfleet replay {result.variant_id}"
            parts.append(failure_block(result, name, len(items) + offset,
                                       f'<p class="muted">{esc(note)}</p>'))
        if len(explored) > FAILURES_SHOWN:
            parts.append(f"<p>… and {len(explored) - FAILURES_SHOWN:,} more distinct explored "
                         f"failures: <code>testfleet show {esc(data.run.run_id)}</code></p>")
    return "".join(parts) + "</section>"


def flaky_section(data: ReportData) -> str:
    if not data.flaky:
        return '<section id="flaky"><h2>Flaky tests</h2><p>No flaky test.</p></section>'
    rows = []
    for f in data.flaky:
        score: Any = f.get("score")
        shown = "-" if score is None else (f"{score:.0%}" + (
            f" ({f['low']:.0%}–{f['high']:.0%})" if f.get("low") is not None else ""))
        rows.append(f"<tr><td><code>{esc(f['nodeid'])}</code></td><td class=\"num\">{esc(shown)}</td>"
                    f"<td class=\"num\">{esc(f.get('failures'))}/{esc(f.get('executions'))}</td>"
                    f"<td>{esc(f.get('evidence', ''))}</td></tr>")
    return (f'<section id="flaky"><h2>Flaky tests ({len(data.flaky)})</h2><table>'
            '<tr><th>test</th><th class="num">flakiness (95% CI)</th><th class="num">failed/ran</th>'
            "<th>evidence</th></tr>" + "".join(rows) + "</table></section>")


def slowest_section(data: ReportData) -> str:
    if not data.slowest:
        return ""
    rows = []
    for r in data.slowest:
        variant = data.variants.get(r.variant_id)
        name = variant_name(r.nodeid, variant["params"], variant["origin"]) if variant else r.nodeid
        rows.append(f'<tr><td class="num">{r.duration:.2f}s</td><td><code>{esc(name)}</code></td>'
                    f'<td class="outcome-{esc(r.outcome.value)}">{esc(r.outcome.value)}</td>'
                    f"<td>{esc(r.worker)}</td></tr>")
    return (f'<section id="slowest"><h2>Slowest {len(rows)} tests</h2><table><tr>'
            '<th class="num">duration</th><th>test</th><th>outcome</th><th>worker</th></tr>'
            + "".join(rows) + "</table></section>")
