"""E-mail through a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest

aiosmtpd = pytest.importorskip("aiosmtpd")
from aiosmtpd.controller import Controller  # noqa: E402
from aiosmtpd.smtp import AuthResult, LoginPassword  # noqa: E402

from testfleet.reporting.notify.config import parse_notify  # noqa: E402
from testfleet.reporting.notify.send import deliver_all  # noqa: E402
from testfleet.reporting.notify.summary import summarize  # noqa: E402
from testfleet.store.db import Store  # noqa: E402

from .conftest import FAST, Outcome, free_port, store_run  # noqa: E402


class Mailbox:
    """Keeps what it is sent; answers ``replies`` first (a busy server's 4xx), then 250."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []
        self.replies: list[str] = []
        self.logins: list[tuple[bytes, bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.replies:
            return self.replies.pop(0)
        self.envelopes.append(envelope)
        return "250 Message accepted"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.password == b"hunter2-smtp"
        if ok:
            self.logins.append((data.login, data.password))
        return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers 535 itself


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port, authenticator=box.authenticate,
                            auth_require_tls=False)
    controller.start()
    yield box, port
    controller.stop()


def _target(port: int, **extra: Any) -> Any:
    return parse_notify({**FAST.model_dump(), "targets": [{
        "kind": "email", "host": "127.0.0.1", "port": port, "starttls": False, "from": "ci@example.com",
        "to": ["qa@example.com", "lead@example.com"], **extra}]})


def test_a_failed_run_is_mailed_with_text_and_html_parts(store: Store, smtp: tuple[Mailbox, int]) -> None:
    box, port = smtp
    summary = summarize(store, store_run(store, "r1", [
        Outcome("tests/test_a.py::test_ok"),
        Outcome("tests/test_a.py::test_broken", "failed", "AssertionError: <b>1 == 2</b>", 8)]))
    (result,) = deliver_all(_target(port, username="ci", password_env="SMTP_PASSWORD"), summary,
                            env={"SMTP_PASSWORD": "hunter2-smtp"})
    assert result.ok, result.error
    assert box.logins == [(b"ci", b"hunter2-smtp")]
    (envelope,) = box.envelopes
    assert envelope.mail_from == "ci@example.com"
    assert envelope.rcpt_tos == ["qa@example.com", "lead@example.com"]
    message = message_from_bytes(envelope.content, policy=policy.default)
    assert message["Subject"].startswith("[testfleet] testfleet ") and "1 failed, 1 passed" in message["Subject"]
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "tests/test_a.py::test_broken" in text and "tests/test_a.py:8" in text and "run r1" in text
    assert "&lt;b&gt;1 == 2&lt;/b&gt;" in html and "<b>1 == 2</b>" not in html  # escaped, not markup


def test_a_busy_server_is_tried_again_a_wrong_password_is_not(store: Store, smtp: tuple[Mailbox, int]) -> None:
    box, port = smtp
    summary = summarize(store, store_run(store, "r1", [Outcome("tests/test_a.py::test_x", "failed", "E: x", 2)]))
    box.replies = ["451 Try again later"]
    (result,) = deliver_all(_target(port), summary, env={}, sleep=lambda s: None)
    assert (result.ok, result.attempts, len(box.envelopes)) == (True, 2, 1)
    (refused,) = deliver_all(_target(port, username="ci", password_env="SMTP_PASSWORD"), summary,
                             env={"SMTP_PASSWORD": "wrong"}, sleep=lambda s: None)
    assert (refused.ok, refused.attempts) == (False, 1)
    assert refused.error.startswith(f"SMTP 535 from 127.0.0.1:{port}")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="makes its certificate with the openssl command")
def test_starttls_upgrades_the_connection_and_a_server_without_it_is_refused(
        store: Store, smtp: tuple[Mailbox, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = summarize(store, store_run(store, "r1", [Outcome("tests/test_a.py::test_x", "failed", "E: x", 2)]))
    box, plain_port = smtp
    (refused,) = deliver_all(_target(plain_port, starttls=True), summary, env={}, sleep=lambda s: None)
    assert (refused.ok, refused.attempts) == (False, 1)  # a settings problem: not tried again
    assert "STARTTLS extension not supported by server" in refused.error

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client verifies the server against this CA
    secure, port = Mailbox(), free_port()
    controller = Controller(secure, hostname="127.0.0.1", port=port, tls_context=server_tls, require_starttls=True,
                            authenticator=secure.authenticate)
    controller.start()
    try:
        (result,) = deliver_all(_target(port, starttls=True, username="ci", password_env="SMTP_PASSWORD"),
                                summary, env={"SMTP_PASSWORD": "hunter2-smtp"})
    finally:
        controller.stop()
    assert result.ok, result.error
    assert secure.logins == [(b"ci", b"hunter2-smtp")] and len(secure.envelopes) == 1
