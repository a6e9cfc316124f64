"""The built-in notification targets, registered through the plugin hook
``testfleet_add_notifiers``: slack, webhook, email, jira and github (each its own module)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from testfleet.plugins import NotifierSpec, hookimpl
from testfleet.reporting.notify import github, jira, mail, slack, webhook
from testfleet.reporting.notify.config import KINDS

__all__ = ["testfleet_add_notifiers"]

_DELIVER: dict[str, Callable[..., Mapping[str, Any]]] = {
    "slack": slack.deliver, "webhook": webhook.deliver, "email": mail.deliver, "jira": jira.deliver,
    "github": github.deliver,
}
_ABOUT = {"slack": "Slack incoming webhook (Block Kit)", "webhook": "JSON POST, HMAC-signed",
          "email": "e-mail over SMTP", "jira": "a Jira issue per new failure group",
          "github": "a GitHub check run with annotations"}


@hookimpl
def testfleet_add_notifiers() -> dict[str, NotifierSpec]:
    return {kind: NotifierSpec(kind, deliver, target=KINDS[kind], description=_ABOUT[kind])
            for kind, deliver in _DELIVER.items()}
