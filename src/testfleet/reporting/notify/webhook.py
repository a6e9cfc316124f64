"""A generic webhook: the run summary as JSON, signed the way GitHub and Stripe sign theirs.

Headers a receiver can rely on:

* ``X-Testfleet-Event: run.finished``
* ``X-Testfleet-Delivery``: an id, the same on every retry of one delivery (to drop repeats);
* ``X-Testfleet-Timestamp``: when the delivery was made, in Unix seconds; the body's ``sent_at``
  holds the same value, so the signature covers it (a receiver can refuse old replays);
* ``X-Testfleet-Signature: sha256=<hex>``: HMAC-SHA256 of the raw body with the secret from
  ``secret_env``, only when that is set. Verify it over the bytes received, before parsing,
  with a constant-time comparison (``hmac.compare_digest``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any

from testfleet.reporting.notify.config import WebhookTarget
from testfleet.reporting.notify.delivery import Http, Tries, secret
from testfleet.reporting.notify.summary import RunSummary

EVENT = "run.finished"
SCHEMA_VERSION = 1


def sign(key: str, body: bytes) -> str:
    """The ``X-Testfleet-Signature`` value of ``body`` under ``key``."""
    return "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def build_body(summary: RunSummary, delivery_id: str, sent_at: int) -> bytes:
    envelope = {"event": EVENT, "version": SCHEMA_VERSION, "delivery": delivery_id, "sent_at": sent_at,
                "run": summary.to_json()}
    return json.dumps(envelope, separators=(",", ":"), default=str).encode()


def deliver(target: WebhookTarget, summary: RunSummary, env: Any, tries: Tries) -> dict[str, Any]:
    url = target.url or secret(env, target.url_env, "the webhook URL")
    key = secret(env, target.secret_env, "the webhook signing secret") if target.secret_env else None
    delivery_id, sent_at = str(uuid.uuid4()), int(time.time())
    body = build_body(summary, delivery_id, sent_at)
    headers = {"Content-Type": "application/json", "User-Agent": "testfleet",
               "X-Testfleet-Event": EVENT, "X-Testfleet-Delivery": delivery_id,
               "X-Testfleet-Timestamp": str(sent_at)}
    if key is not None:
        headers["X-Testfleet-Signature"] = sign(key, body)
    with Http(tries) as http:
        http.request("POST", url, content=body, headers=headers)
    return {"delivery": delivery_id, "signed": key is not None}


__all__ = ["EVENT", "build_body", "deliver", "sign"]
