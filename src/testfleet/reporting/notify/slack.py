"""Slack: one Block Kit message to an incoming webhook.

The message: a header (verdict), a section with the counts as fields, one section per failure
group (its error, tests, where, whether it is new), the flaky tests, and a context line with the
run id. Slack's limits are kept by construction rather than hoped for: at most 50 blocks, 150
characters in a header, 3000 in a section's text, 10 fields of 2000 each, 10 context elements;
``text`` is the fallback notifications show. The webhook answers ``ok`` (200) or an error word
(``invalid_blocks``, 400) which is reported as is.
"""

from __future__ import annotations

from typing import Any

from testfleet.reporting.notify.config import SlackTarget
from testfleet.reporting.notify.delivery import Http, Tries, secret
from testfleet.reporting.notify.summary import RunSummary
from testfleet.reporting.summary import ordered_words

MAX_BLOCKS = 50
MAX_TEXT = 3000
MAX_HEADER = 150
MAX_FIELDS = 10
MAX_FIELD = 2000
_ICON = {0: ":white_check_mark:", 1: ":x:", 2: ":warning:", 5: ":grey_question:"}


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def escape(text: str) -> str:
    """Text shown literally in mrkdwn (Slack's three control characters)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _mrkdwn(text: str, limit: int = MAX_TEXT) -> dict[str, str]:
    return {"type": "mrkdwn", "text": clip(text, limit)}


def _fields(pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [_mrkdwn(f"*{escape(name)}*\n{value}", MAX_FIELD) for name, value in pairs[:MAX_FIELDS]]


def build_message(summary: RunSummary, max_failures: int = 10) -> dict[str, Any]:
    """The webhook's JSON body for this run."""
    icon = _ICON.get(summary.exit_code, ":x:")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "emoji": True,
                                    "text": clip(f"{icon} {summary.title()}", MAX_HEADER)}}]
    counts = [(word.capitalize(), str(summary.counts[word])) for word in ordered_words(summary.counts)]
    counts += [("New failures", str(len(summary.new_failures)))] if summary.failures else []
    counts += [("Flaky", str(len(summary.flaky)))] if summary.flaky else []
    section: dict[str, Any] = {"type": "section", "text": _mrkdwn(f"*{escape(summary.line)}*")}
    if counts:
        section["fields"] = _fields(counts)
    blocks.append(section)
    # header + counts + divider + title + (groups) + more + flaky + context: room for the groups
    room = MAX_BLOCKS - 7
    shown = summary.groups[: min(max_failures, room)]
    if shown:
        blocks.append({"type": "divider"})
        blocks.append({"type": "section", "text": _mrkdwn(
            f"*Failures*: {len(summary.failures)} in {len(summary.groups)} "
            f"group{'s' if len(summary.groups) != 1 else ''}")})
    places = {f.group: f for f in summary.failures}
    for group in shown:
        first = places[group.key]
        tests = "\n".join(f"`{escape(n)}`" for n in group.nodeids[:5])
        if len(group.nodeids) > 5:
            tests += f"\n… and {len(group.nodeids) - 5} more"
        where = f"{first.file}:{first.line}" if first.file and first.line else first.file or "?"
        blocks.append({"type": "section",
                       "text": _mrkdwn(f"*{escape(clip(group.title(), 300))}*"
                                       + ("  :new:" if group.new else "")
                                       + f"\n```{escape(clip(first.headline(), 1500))}```"),
                       "fields": _fields([("Tests", tests), ("Where", f"`{escape(where)}`"),
                                          ("Fingerprint", f"`{group.key}`"),
                                          ("New", "yes" if group.new else "no")])})
    if len(summary.groups) > len(shown):
        blocks.append({"type": "context", "elements": [_mrkdwn(
            f"… and {len(summary.groups) - len(shown)} more failure groups: `testfleet show {summary.run_id}`")]})
    if summary.flaky:
        names = ", ".join(f"`{escape(n)}`" for n in summary.flaky[:20])
        more = f" and {len(summary.flaky) - 20} more" if len(summary.flaky) > 20 else ""
        blocks.append({"type": "section", "text": _mrkdwn(f"*Flaky*: {names}{more}")})
    context = [f"run `{summary.run_id}`"]
    if summary.git_sha:
        context.append(f"git `{summary.git_sha[:10]}`")
    if summary.previous_run:
        context.append(f"previous run `{summary.previous_run}`")
    blocks.append({"type": "context", "elements": [_mrkdwn(text) for text in context]})
    return {"text": clip(f"{summary.title()}: {summary.line}", MAX_TEXT), "blocks": blocks[:MAX_BLOCKS]}


def deliver(target: SlackTarget, summary: RunSummary, env: Any, tries: Tries) -> dict[str, Any]:
    url = secret(env, target.url_env, "the Slack webhook URL")
    with Http(tries) as http:
        http.request("POST", url, json=build_message(summary, target.max_failures))
    return {}


__all__ = ["build_message", "deliver"]
