"""SUT instances against real processes: the bundled inventory service and tiny inline scripts."""

from __future__ import annotations

import os
import shlex
import signal
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
import yaml

from testfleet.errors import SettingsError, WorkerError
from testfleet.execution.sut import InstanceInfo, SutInstance, SutSpec

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="process groups are POSIX")

ROOT = Path(__file__).resolve().parents[2]
SERVICE = ROOT / "examples" / "inventory" / "inventory_service.py"
PY = shlex.quote(sys.executable)


def inline(code: str) -> str:
    """A command running ``code`` with this interpreter (placeholders in ``code`` are filled)."""
    return f"{PY} -c {shlex.quote(code)}"


def service_spec(**extra) -> SutSpec:
    return SutSpec(command=f"{PY} {shlex.quote(str(SERVICE))} --port {{port}}", start_timeout=10.0,
                   grace=3.0, **extra)


def group_members(pgid: int) -> list[int]:
    members = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                members.append(proc.pid)
        except (ProcessLookupError, psutil.Error, OSError):
            continue
    return members


def wait_for(condition, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def assert_gone(pid: int) -> None:
    assert wait_for(lambda: not psutil.pid_exists(pid) and not group_members(pid)), group_members(pid)


def test_http_ready_health_stop_and_restart_after_sigkill(tmp_path: Path) -> None:
    sut = SutInstance(service_spec(ready={"http": "http://127.0.0.1:{port}/health"}), "w1", tmp_path)
    with sut:
        info = sut.info
        assert isinstance(info, InstanceInfo)
        assert info.instance == "w1" and info.workdir == str(tmp_path / "config-1")
        assert info.base_url == f"http://127.0.0.1:{info.port}"
        assert info.log_path == str(tmp_path / "sut-w1.log") and info.config_path is None
        assert sut.alive() and sut.exit_code() is None
        response = httpx.get(info.base_url + "/health", timeout=5)
        assert response.status_code == 200 and response.json() == {"status": "ok"}
        assert str(info.port) in sut.tail()  # the service prints its port first

        first_pid = info.pid
        os.kill(first_pid, signal.SIGKILL)
        assert wait_for(lambda: not sut.alive())
        assert sut.exit_code() == -signal.SIGKILL

        again = sut.restart()
        assert again.pid != first_pid and sut.alive()
        assert again.port == info.port and again.workdir == info.workdir  # same address, same state
        assert_gone(first_pid)
        assert httpx.get(again.base_url + "/health", timeout=5).status_code == 200
    code = sut.exit_code()
    assert code is not None and code == -signal.SIGTERM
    assert_gone(again.pid)
    assert not sut.alive()
    assert sut.stop() == code  # idempotent


def test_tcp_probe(tmp_path: Path) -> None:
    with SutInstance(service_spec(ready={"tcp": "{port}"}), "w2", tmp_path) as sut:
        assert httpx.get(sut.info.base_url + "/health", timeout=5).status_code == 200
        pid = sut.pid
    assert_gone(pid)


def test_log_pattern_probe(tmp_path: Path) -> None:
    code = "import sys, time; time.sleep(0.3); print('listening on', sys.argv[1], flush=True); time.sleep(60)"
    spec = SutSpec(command=inline(code) + " {port}", ready={"log": r"listening on {port}$"}, start_timeout=5,
                   grace=1)
    sut = SutInstance(spec, "w3", tmp_path)
    info = sut.start()
    try:
        assert f"listening on {info.port}" in sut.tail()
        assert sut.alive()
    finally:
        sut.stop()
    assert_gone(info.pid)


def test_stop_kills_whole_group_and_escalates_to_sigkill(tmp_path: Path) -> None:
    # the leader ignores SIGTERM and has a child: both must be gone after stop()
    code = ("import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
            "print('up', flush=True); time.sleep(60)")
    spec = SutSpec(command=inline(code), ready={"log": "^up$"}, start_timeout=5, grace=0.3)
    sut = SutInstance(spec, "w4", tmp_path)
    info = sut.start()
    assert wait_for(lambda: len(group_members(info.pid)) >= 2)
    assert sut.stop() == -signal.SIGKILL
    assert_gone(info.pid)


def test_immediate_exit_reports_code_and_last_line(tmp_path: Path) -> None:
    code = "import sys; print('early line', flush=True); print('fatal: bad config', flush=True); sys.exit(3)"
    spec = SutSpec(command=inline(code), ready={"tcp": "{port}"}, start_timeout=5)
    sut = SutInstance(spec, "w5", tmp_path)
    with pytest.raises(WorkerError) as caught:
        sut.start()
    message = str(caught.value)
    assert "exit code 3" in message or "code 3" in message
    assert "fatal: bad config" in message
    assert sut.exit_code() == 3 and not sut.alive()


def test_start_timeout_leaves_nothing_running(tmp_path: Path) -> None:
    code = "import time; print('starting', flush=True); time.sleep(60)"
    spec = SutSpec(command=inline(code), ready={"log": "never printed"}, start_timeout=0.5, grace=1)
    sut = SutInstance(spec, "w6", tmp_path)
    started = time.monotonic()
    with pytest.raises(WorkerError, match="not ready after 0.5 s") as caught:
        sut.start()
    assert time.monotonic() - started < 5
    assert "starting" in str(caught.value)
    assert sut.pid is not None
    assert_gone(sut.pid)
    assert not sut.alive() and sut.exit_code() is not None


def test_missing_executable_is_a_worker_error(tmp_path: Path) -> None:
    spec = SutSpec(command="/nonexistent/testfleet-sut --port {port}")
    with pytest.raises(WorkerError, match="cannot start"):
        SutInstance(spec, "w7", tmp_path).start()


def test_config_template_rendered_and_passed(tmp_path: Path) -> None:
    template = tmp_path / "sut.yaml.tmpl"
    template.write_text("cache: {cache}\nthreads: {threads}\nport: {port}\n", encoding="utf-8")
    code = ("import sys, time; print('config at', sys.argv[1]); print(open(sys.argv[1]).read(), flush=True); "
            "print('ready', flush=True); time.sleep(60)")
    spec = SutSpec(command=inline(code) + " {config}", config_template=str(template),
                   config={"cache": "lru", "threads": 4}, ready={"log": "^ready$"}, start_timeout=5, grace=1)
    workdir = tmp_path / "work dir"  # a space: the path must reach the SUT as one argument
    with SutInstance(spec, "w8", workdir, config={"cache": "fifo", "threads": 8}) as sut:
        info = sut.info
        assert info.config == {"cache": "fifo", "threads": 8}
        assert info.config_path == str(workdir / "sut-w8.yaml")
        rendered = Path(info.config_path).read_text(encoding="utf-8")
        assert rendered == f"cache: fifo\nthreads: 8\nport: {info.port}\n"
        assert f"config at {info.config_path}" in sut.tail()
        assert "threads: 8" in sut.tail()


def test_config_written_as_yaml_or_json_without_template(tmp_path: Path) -> None:
    code = "import time; print('ok', flush=True); time.sleep(60)"
    spec = SutSpec(command=inline(code), config={"cache": "lru", "threads": 4}, ready={"log": "ok"},
                   start_timeout=5, grace=1)
    with SutInstance(spec, "w9", tmp_path) as sut:
        assert yaml.safe_load(Path(sut.info.config_path).read_text()) == {"cache": "lru", "threads": 4}
    json_spec = spec.model_copy(update={"config_file": "conf-{instance}.json"})
    with SutInstance(json_spec, "w9", tmp_path) as sut:
        assert sut.info.config_path == str(tmp_path / "conf-w9.json")
        assert '"threads": 4' in Path(sut.info.config_path).read_text()


def test_template_with_unknown_key_is_a_settings_error(tmp_path: Path) -> None:
    template = tmp_path / "app.ini.tmpl"
    template.write_text("size = {size}\n", encoding="utf-8")
    spec = SutSpec(command=inline("pass"), config_template=str(template), config={"cache": "lru"})
    with pytest.raises(SettingsError, match=r"config_template.*\{size\}"):
        SutInstance(spec, "w10", tmp_path).start()


@pytest.mark.parametrize(
    ("table", "key", "text"),
    [
        ({"command": "x", "ready": {"grpc": "1"}}, "ready", "expected one of http, tcp, log"),
        ({"command": "x", "ready": {"http": "a", "tcp": "1"}}, "ready", "expected one of http, tcp, log"),
        ({"command": "x", "ready": {"http": "localhost/health"}}, "ready", "http://"),
        ({"command": "x", "ready": {"tcp": "host:abc"}}, "ready", "port"),
        ({"command": "x", "ready": {"log": "("}}, "ready", "regular expression"),
        ({"command": "x", "grace": -1}, "grace", ">= 0"),
        ({"command": "x", "start_timeout": 0}, "start_timeout", "> 0"),
        ({"command": "x", "stop_signal": "SIGNOPE"}, "stop_signal", "unknown signal"),
        ({"command": "x", "colour": "red"}, "colour", "unknown key"),
        ({"command": "  "}, "command", "must not be empty"),
        ({"command": "x 'unclosed"}, "command", "cannot be split"),
        ({"command": "x", "env": {"THREADS": 4}}, "env.THREADS", "string"),
        ({"command": "x", "grace": "5"}, "grace", "number"),
        ({}, "command", "required"),
    ],
)
def test_spec_validation_names_the_key(table: dict, key: str, text: str) -> None:
    with pytest.raises(SettingsError) as caught:
        SutSpec.model_validate(table)
    message = str(caught.value)
    assert message.startswith("[tool.testfleet.sut] ")
    assert f"{key}:" in message and text in message
    assert caught.value.place == key


def test_spec_accepts_the_documented_table() -> None:
    spec = SutSpec(command="python inventory_service.py --port {port} --config {config}",
                   env={"LOG_LEVEL": "debug"}, config_template="sut.yaml.tmpl",
                   config={"cache": "lru", "threads": 4}, ready={"http": "http://127.0.0.1:{port}/health"},
                   start_timeout=10, stop_signal="TERM", grace=5.0)
    assert spec.start_timeout == 10.0 and spec.ready == {"http": "http://127.0.0.1:{port}/health"}
    assert SutSpec(command="x", ready={"log": r"listening on \d{2,5}"}).ready is not None


def test_env_placeholders_reach_the_process(tmp_path: Path) -> None:
    code = "import os, time; print('PORT=' + os.environ['APP_PORT'], flush=True); time.sleep(60)"
    spec = SutSpec(command=inline(code), env={"APP_PORT": "{port}"}, ready={"log": r"PORT=\d+"},
                   start_timeout=5, grace=1)
    with SutInstance(spec, "w11", tmp_path) as sut:
        assert f"PORT={sut.info.port}" in sut.tail()
