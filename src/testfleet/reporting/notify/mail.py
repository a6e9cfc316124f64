"""E-mail through SMTP: a plain-text part and an HTML alternative (standard library only).

``starttls`` (the default, port 587) upgrades the connection before logging in; ``ssl`` uses
implicit TLS (port 465); with neither the connection stays plain (a relay on localhost). The
password comes from ``password_env``. A dropped connection, a refused connection or a 4xx reply
(the server's "try again later") is tried again; a 5xx reply (a refused recipient, bad
credentials) is not.
"""

from __future__ import annotations

import html
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from testfleet.reporting.notify.config import EmailTarget
from testfleet.reporting.notify.delivery import DeliveryError, Tries, secret
from testfleet.reporting.notify.summary import RunSummary

MAX_LISTED = 50


def build_message(target: EmailTarget, summary: RunSummary) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = f"[testfleet] {summary.title()}: {summary.line}"
    message["From"] = target.sender
    message["To"] = ", ".join(target.to)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=target.sender.rsplit("@", 1)[-1])
    message.set_content(_text(summary))
    message.add_alternative(_html(summary), subtype="html")
    return message


def _text(summary: RunSummary) -> str:
    lines = [summary.title(), summary.line, ""]
    if summary.groups:
        lines.append(f"Failures ({len(summary.failures)} in {len(summary.groups)} groups):")
        places = {f.group: f for f in summary.failures}
        for group in summary.groups[:MAX_LISTED]:
            first = places[group.key]
            lines.append(f"- {group.title()}{'  [new]' if group.new else ''}")
            lines.append(f"  {first.headline()}")
            lines.append(f"  at {first.file}:{first.line}" if first.line else f"  at {first.file}")
            lines += [f"  {nodeid}" for nodeid in group.nodeids[:10]]
        lines.append("")
    if summary.flaky:
        lines += ["Flaky:", *(f"- {n}" for n in summary.flaky[:MAX_LISTED]), ""]
    lines.append(f"run {summary.run_id}" + (f" · git {summary.git_sha[:10]}" if summary.git_sha else ""))
    return "\n".join(lines) + "\n"


def _html(summary: RunSummary) -> str:
    e = html.escape
    parts = [f"<h2>{e(summary.title())}</h2>", f"<p><strong>{e(summary.line)}</strong></p>"]
    if summary.groups:
        parts.append(f"<h3>Failures ({len(summary.failures)} in {len(summary.groups)} groups)</h3><ul>")
        places = {f.group: f for f in summary.failures}
        for group in summary.groups[:MAX_LISTED]:
            first = places[group.key]
            tests = "".join(f"<li><code>{e(n)}</code></li>" for n in group.nodeids[:10])
            parts.append(f"<li><strong>{e(group.title())}</strong>{' <em>new</em>' if group.new else ''}"
                         f"<pre>{e(first.headline())}</pre>"
                         f"at <code>{e(first.file)}:{first.line or ''}</code><ul>{tests}</ul></li>")
        parts.append("</ul>")
    if summary.flaky:
        items = "".join(f"<li><code>{e(n)}</code></li>" for n in summary.flaky[:MAX_LISTED])
        parts.append(f"<h3>Flaky</h3><ul>{items}</ul>")
    parts.append(f"<p><small>run <code>{e(summary.run_id)}</code></small></p>")
    return "<html><body>" + "".join(parts) + "</body></html>"


def deliver(target: EmailTarget, summary: RunSummary, env: Any, tries: Tries) -> dict[str, Any]:
    password = secret(env, target.password_env, "the SMTP password") if target.password_env else None
    message = build_message(target, summary)
    tries.run(lambda: _send(target, message, password, tries.timeout()))
    return {"to": list(target.to)}


def _send(target: EmailTarget, message: EmailMessage, password: str | None, timeout: float) -> None:
    where = f"{target.host}:{target.port}"
    context = ssl.create_default_context()
    try:
        smtp = (smtplib.SMTP_SSL(target.host, target.port, timeout=timeout, context=context) if target.ssl
                else smtplib.SMTP(target.host, target.port, timeout=timeout))
        with smtp:
            if target.starttls:
                smtp.starttls(context=context)
            if target.username:
                smtp.login(target.username, password or "")
            refused = smtp.send_message(message)
    except smtplib.SMTPResponseException as exc:
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        raise DeliveryError(f"SMTP {exc.smtp_code} from {where}: {text}",
                            retryable=400 <= exc.smtp_code < 500) from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise DeliveryError(f"{where} refused every recipient: {', '.join(exc.recipients)}",
                            retryable=False) from None
    except smtplib.SMTPNotSupportedError as exc:  # no STARTTLS, no AUTH: the settings must change
        raise DeliveryError(f"{where}: {exc}", retryable=False) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"cannot send through {where}: {exc or type(exc).__name__}") from None
    if refused:
        raise DeliveryError(f"{where} refused {', '.join(refused)}", retryable=False)


__all__ = ["build_message", "deliver"]
