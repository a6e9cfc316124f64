"""The server's security as a user meets it: a token off loopback, archives that try to escape,
uploads over the limit. The server keeps serving after each refusal."""

from __future__ import annotations

import io
import tarfile
import tempfile
import uuid
from pathlib import Path

import httpx
import pytest
from execution.conftest import make_suite, run_cli

from .conftest import start_server

pytestmark = pytest.mark.slow  # real servers and runs: scheduled first in the parallel suite

SUITE = {"tests/test_a.py": """
    def test_ok():
        pass


    def test_bad():
        assert False, "bad"
    """}


def test_off_loopback_a_token_is_generated_printed_and_required(tmp_path: Path) -> None:
    # listening on every address of this machine; the test still only talks to 127.0.0.1
    server = start_server(tmp_path, "--host", "0.0.0.0")
    try:
        assert server.token, "a server off loopback must print the token it generated"
        assert httpx.get(server.url + "/runs", timeout=30).status_code == 401
        wrong = httpx.get(server.url + "/runs", headers={"Authorization": "Bearer nope"}, timeout=30)
        assert wrong.status_code == 401 and "error" in wrong.json()
        right = httpx.get(server.url + "/runs", headers={"Authorization": f"Bearer {server.token}"}, timeout=30)
        assert right.status_code == 200
        project = make_suite(tmp_path / "p", SUITE)
        refused = server.submit(project, "tests")
        assert refused.returncode == 4 and "401" in refused.stderr
        ran = server.submit(project, "--token", server.token, "tests")
        assert ran.returncode == 1, ran.output  # the run's own exit code: a test failed
    finally:
        server.stop()


def _archive(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_an_archive_that_climbs_out_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    marker = f"escape-{uuid.uuid4().hex}.txt"
    try:
        body = _archive({"tests/test_a.py": b"def test_a():\n    pass\n", f"../../../{marker}": b"out"})
        answer = httpx.post(server.url + "/runs", params={"arg": "tests"}, content=body, timeout=60,
                            headers={"Content-Type": "application/gzip"})
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["place"].endswith(marker)
        # the project would unpack to TMP/testfleet-serve-*/RUN/project: three levels up is TMP
        assert not (Path(tempfile.gettempdir()) / marker).exists() and not list(tmp_path.rglob(marker))
        ran = server.submit(make_suite(tmp_path / "p", SUITE), "tests")
        assert ran.returncode == 1  # still serving
    finally:
        server.stop()


def test_an_upload_over_the_limit_gets_413_and_the_server_goes_on(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--max-upload-mb", "1")
    try:
        answer = httpx.post(server.url + "/runs", params={"arg": "tests"}, content=b"\0" * (3 * 1024 * 1024),
                            headers={"Content-Type": "application/gzip"}, timeout=60)
        assert answer.status_code == 413 and "error" in answer.json()
        ran = server.submit(make_suite(tmp_path / "p", SUITE), "tests")
        assert ran.returncode == 1
    finally:
        server.stop()


def test_a_port_in_use_is_a_usage_error(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        port = server.url.rsplit(":", 1)[1]
        taken = run_cli(tmp_path, "serve", "--port", port, "--store", str(tmp_path / "other.duckdb"))
        assert taken.returncode == 4 and f"cannot listen on 127.0.0.1:{port}" in taken.stderr
    finally:
        server.stop()
