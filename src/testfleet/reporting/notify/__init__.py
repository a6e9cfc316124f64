"""Notifications and trackers: Slack, a signed webhook, e-mail, Jira and GitHub checks, sent when a
run ends (``[tool.testfleet.notify]``; ``config.py`` reads the table, ``send.py`` delivers).

Only the settings model is imported here: settings.py needs it, and every command reads settings,
so the notifiers (httpx, smtplib) load only when a run ends with something to send.
"""

from testfleet.reporting.notify.config import NotifySettings, NotifyTableError, parse_notify

__all__ = ["NotifySettings", "NotifyTableError", "parse_notify"]
