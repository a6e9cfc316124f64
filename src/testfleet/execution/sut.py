"""SUT instances: each worker starts, watches and stops its own system under test.

An instance is declared once in ``[tool.testfleet.sut]`` (:class:`SutSpec`) and started per worker
(:class:`SutInstance`) on a free port of 127.0.0.1, with the instance's own configuration::

    [tool.testfleet.sut]
    command = "python inventory_service.py --port {port} --config {config}"
    env = {LOG_LEVEL = "debug"}
    config_template = "sut.yaml.tmpl"      # optional; str.format-style {key} of the config values
    config = {cache = "lru", threads = 4}
    ready = {http = "http://127.0.0.1:{port}/health"}   # or {tcp = "{port}"} or {log = "listening on .*"}
    start_timeout = 10.0
    stop_signal = "SIGTERM"
    grace = 5.0
    metrics = "http://127.0.0.1:{port}/metrics"        # optional: Prometheus text exposition
    config_space = "sut.space.yaml"        # optional: the space exploration varies the config in
    draw_from_space = false                # true: each instance runs a point drawn from the space
    persist_state = false                  # true: keep {workdir} when the config changes

Placeholders ``{port}``, ``{config}``, ``{instance}`` and ``{workdir}`` are filled in the command
(each value shell-quoted, then the command is split with :func:`shlex.split`), in ``env`` values and
in the ``ready`` target; any other braces are left as written (so ``python -c "print({})"`` or a
regex ``\\d{3}`` survive). The process runs in its own session and process group, stdout and stderr
appended to ``<workdir>/sut-<instance>.log``; stopping signals the whole group, waits ``grace``
seconds, then SIGKILLs it. A start that fails (the process exits, or is not ready within
``start_timeout``) raises :class:`~testfleet.errors.WorkerError` with the exit code and the last log
lines, and leaves nothing running.

Working directories: the log is appended to ``<workdir>/sut-<instance>.log`` and the config file
is written next to it; the SUT's own
``{workdir}`` is ``<workdir>/config-<n>``, fresh and empty for each configuration the instance runs
(a restart with the same configuration, after a crash, keeps it), so no state written under one
configuration is read under the next; ``persist_state = true`` keeps one directory throughout.

Ports: ``{port}`` is a free port picked just before the first start; a restart (another
configuration, a crash) asks for the same port again, so the address tests hold stays valid; only
when someone else took it meanwhile does it move. If another process takes the port between the
pick and the bind (the SUT's log says the address is in use), the start is retried on a new port. A ready
target on a *fixed* port that already answers before the SUT was started is refused: the probe
would be talking to someone else's server.

Under ``testfleet run --chaos`` the tests get the port (and ``base_url``) of a proxy in front of
the instance (:mod:`testfleet.execution.chaos.agent`), which keeps its port across restarts;
``{port}`` in the command stays the SUT's own.

``config_space`` names a space file (dimensions + constraints, see ``testfleet space show``) or a
JSON Schema: exploration varies the configuration within it (``sut.<key>``, every constraint
kept). Instances run ``config`` (the declared defaults) unless ``draw_from_space = true``: then each
draws a point of the space, seeded by the run's seed and the instance name (so a run's instances,
and a replay's, get the same configs), laid over ``config``.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Self

import httpx
import psutil

from testfleet.configs.formats import detect_format, dumps
from testfleet.errors import ConfigError, SettingsError, WorkerError
from testfleet.execution.parent_death import GroupWatchdog, preexec_die_with
from testfleet.execution.sut_spec import (
    TABLE,
    SutSpec,
    _fill,
    _signal_number,
    draw_config,
    instance_config,
)

__all__ = ["InstanceInfo", "SutInstance", "SutSpec", "active_instances", "draw_config", "instance_config"]

HOST = "127.0.0.1"
_POLL = 0.05
_TEMPLATE_SUFFIXES = (".tmpl", ".tpl", ".template", ".in")

_ACTIVE: dict[int, SutInstance] = {}


def active_instances() -> list[SutInstance]:
    """The instances this process has started and not stopped (for the telemetry sampler)."""
    return list(_ACTIVE.values())


_IN_USE = re.compile(r"address already in use|EADDRINUSE|errno 98", re.IGNORECASE)
_PORT_RETRIES = 3


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _port_is_free(port: int) -> bool:
    """Nobody listens on it: a server that binds with SO_REUSEADDR (as servers do) can take it,
    even while connections of its previous owner linger in TIME_WAIT."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def json_clone(value: Any) -> Any:
    """A deep copy of a config (dicts and lists), so later edits of the live one cannot touch it."""
    if isinstance(value, dict):
        return {k: json_clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_clone(v) for v in value]
    return value


@dataclass
class InstanceInfo:
    instance: str
    port: int
    pid: int
    base_url: str
    config: dict[str, Any]
    config_path: str | None
    log_path: str
    workdir: str


class SutInstance:
    """One SUT process owned by one worker. Use as a context manager, or start()/stop()."""

    def __init__(self, spec: SutSpec, instance: str, workdir: Path, config: dict[str, Any] | None = None) -> None:
        self.spec = spec
        self.instance = instance
        #: holds the log and, unless ``persist_state``, one working directory per configuration
        self.root = Path(workdir)
        #: the SUT's working directory (``{workdir}``) for the current configuration
        self.workdir = self.root
        #: the instance's config values; given ones replace the spec's ``config`` entirely.
        self.config: dict[str, Any] = dict(spec.config if config is None else config)
        self.log_path = self.root / f"sut-{instance}.log"
        self._workdir_config: dict[str, Any] | None = None  # the config self.workdir was made for
        self._workdirs = 0
        #: the port of the last start: a restart keeps it (the address tests hold stays valid)
        self.port: int | None = None
        self.info: InstanceInfo | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._log_offset = 0
        self._reaped_group = True
        self._values: dict[str, str] = {}
        self._watchdog: GroupWatchdog | None = None

    # -- state ---------------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def alive(self) -> bool:
        """Running: not reaped, and not a zombie either (a multi-threaded process whose main
        thread has died is a zombie that waitpid cannot reap until its other threads end)."""
        if self._proc is None or self._proc.poll() is not None:
            return False
        try:
            return bool(psutil.Process(self._proc.pid).status() != psutil.STATUS_ZOMBIE)
        except psutil.NoSuchProcess:
            return False

    def exit_code(self) -> int | None:
        """The exit status (negative: the signal) once the process ended; None while it runs."""
        return self._proc.poll() if self._proc is not None else None

    def tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of the instance's log (every start appends to it)."""
        return self._tail(lines, 0)

    def _tail(self, lines: int, offset: int) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(offset)
                data = fh.read()
        except OSError:
            return ""
        return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:]) if lines > 0 else ""

    # -- lifecycle -----------------------------------------------------------------------------
    def metrics_url(self) -> str | None:
        """The Prometheus endpoint of the running instance, or None."""
        if self.spec.metrics is None or self.info is None:
            return None
        return _fill(self.spec.metrics, self._values)

    def start(self) -> InstanceInfo:
        if self.alive() and self.info is not None:
            return self.info
        for attempt in range(_PORT_RETRIES):
            # a restart asks for the port of the last start first (free again once the old
            # process is gone); only if someone else took it meanwhile does the address move
            port = self.port if attempt == 0 and self.port is not None and _port_is_free(self.port) \
                else _free_port()
            try:
                return self._start_once(port)
            except WorkerError as exc:
                # the port was taken before the SUT bound it: try another
                if attempt + 1 == _PORT_RETRIES or "{port}" not in self.spec.command \
                        or not _IN_USE.search(str(exc)):
                    raise
        raise AssertionError("unreachable")

    def _enter_workdir(self) -> None:
        """Each configuration starts in a fresh, empty working directory (the state one
        configuration's SUT wrote must not leak into the next), unless the SUT declares
        ``persist_state``; a restart with the same configuration (after a crash) keeps it."""
        self.root.mkdir(parents=True, exist_ok=True)
        if self.spec.persist_state or self._workdir_config == self.config:
            self.workdir.mkdir(parents=True, exist_ok=True)
            self._workdir_config = json_clone(self.config)
            return
        if self.workdir != self.root:
            shutil.rmtree(self.workdir, ignore_errors=True)  # the last configuration's state
        self._workdirs += 1
        self.workdir = self.root / f"config-{self._workdirs}"
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.workdir.mkdir(parents=True)
        self._workdir_config = json_clone(self.config)

    def _start_once(self, port: int) -> InstanceInfo:
        self.stop()
        self._enter_workdir()
        self._refuse_taken_ready_port()
        self.port = port
        values = {"port": str(port), "instance": self.instance, "workdir": str(self.workdir)}
        config_path = self._write_config(values)
        values["config"] = config_path or ""
        self._values = values
        quoted = {key: shlex.quote(value) for key, value in values.items()}
        argv = shlex.split(_fill(self.spec.command, quoted))
        env = dict(os.environ)
        env.update({key: _fill(value, values) for key, value in self.spec.env.items()})

        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed by stop()
        self._log_offset = self._log.tell()
        try:
            # the SUT dies with this process even when it is SIGKILLed (no stop() then), and so
            # does what it started, through the watchdog of its process group
            self._proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                cwd=self.spec.cwd, env=env, start_new_session=True,
                preexec_fn=preexec_die_with(os.getpid()) if os.name == "posix" else None)
        except OSError as exc:
            self._close_log()
            raise WorkerError(f"SUT instance {self.instance}: cannot start {argv[0]!r}: {exc}",
                              place="tool.testfleet.sut.command") from None
        self._watchdog = GroupWatchdog(self._proc.pid)
        self._reaped_group = False
        self.info = InstanceInfo(instance=self.instance, port=port, pid=self._proc.pid,
                                 base_url=f"http://{HOST}:{port}", config=dict(self.config),
                                 config_path=config_path, log_path=str(self.log_path),
                                 workdir=str(self.workdir))
        _ACTIVE[id(self)] = self
        self._wait_ready(values)
        if os.environ.get("TESTFLEET_CHAOS_DIR"):  # --chaos: tests reach the SUT through a proxy
            from testfleet.execution.chaos.agent import front

            self.info.port = front(self.instance, port, self._proc.pid)
            self.info.base_url = f"http://{HOST}:{self.info.port}"
        return self.info

    def stop(self) -> int | None:
        """Signal the process group, wait ``grace`` s, then SIGKILL it. Idempotent; the exit code."""
        _ACTIVE.pop(id(self), None)
        proc = self._proc
        if proc is None:
            return None
        if not self._reaped_group:
            if proc.poll() is None:
                self._signal_group(_signal_number(self.spec.stop_signal))
                try:
                    proc.wait(timeout=self.spec.grace)
                except subprocess.TimeoutExpired:
                    pass
            # whatever is left of the group (children that ignored the signal, or the leader itself)
            self._signal_group(signal.SIGKILL)
            proc.wait()
            self._reaped_group = True
        if self._watchdog is not None:
            self._watchdog.release()
            self._watchdog = None
        self._close_log()
        return proc.returncode

    def restart(self) -> InstanceInfo:
        """A fresh start on the same port when it is still free (otherwise a new one), e.g. after
        the SUT crashed or with another configuration (then in a fresh working directory)."""
        self.stop()
        return self.start()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- helpers -------------------------------------------------------------------------------
    def _signal_group(self, signum: int) -> None:
        assert self._proc is not None
        try:
            os.killpg(self._proc.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def _write_config(self, values: dict[str, str]) -> str | None:
        spec = self.spec
        if spec.config_template is not None:
            template = Path(spec.config_template)
            if not template.is_absolute() and spec.cwd is not None:
                template = Path(spec.cwd) / template
            try:
                text = template.read_text(encoding="utf-8")
            except OSError as exc:
                raise SettingsError(f"{TABLE} config_template: cannot read {template}: {exc.strerror}") from None
            try:
                rendered = text.format_map({**values, **self.config})
            except KeyError as exc:
                raise SettingsError(f"{TABLE} config_template: {template} uses {{{exc.args[0]}}}, "
                                    f"which is not among the config values") from None
            except (ValueError, IndexError) as exc:
                raise SettingsError(f"{TABLE} config_template: {template}: {exc}") from None
            name = template.name
            for suffix in _TEMPLATE_SUFFIXES:
                if name.endswith(suffix) and len(name) > len(suffix):
                    name = name[: -len(suffix)]
                    break
            target = self.root / f"sut-{self.instance}{''.join(Path(name).suffixes)}"
            target.write_text(rendered, encoding="utf-8")
            return str(target)
        if not self.config and spec.config_file is None:
            return None
        target = self.root / _fill(spec.config_file or "sut-{instance}.yaml", values)
        try:
            text = dumps(self.config, detect_format(target, data=self.config), source=str(target))
        except ConfigError as exc:
            raise SettingsError(f"{TABLE} config: {exc.render()}") from None
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        return str(target)

    def _refuse_taken_ready_port(self) -> None:
        """A ready probe on a fixed port that something already answers would pass at once."""
        ready = self.spec.ready or {}
        kind, target = next(iter(ready.items()), (None, ""))
        if kind not in ("http", "tcp") or "{port}" in target:
            return
        filled = _fill(target, {"instance": self.instance, "workdir": str(self.workdir)})
        if kind == "http":
            parsed = httpx.URL(filled)
            host, port = parsed.host or HOST, parsed.port or (443 if parsed.scheme == "https" else 80)
        else:
            host_text, _, port_text = filled.rpartition(":")
            host, port = host_text or HOST, int(port_text)
        try:
            with socket.create_connection((host, port), timeout=0.5):
                pass
        except OSError:
            return
        raise WorkerError(f"SUT instance {self.instance}: port {port} is already taken by another "
                          f"process, so the ready probe ({kind} {filled}) cannot tell our SUT from "
                          "it; use {port} in command and ready so each instance gets a free port",
                          place="tool.testfleet.sut.ready")

    def _wait_ready(self, values: dict[str, str]) -> None:
        assert self._proc is not None
        ready = self.spec.ready
        kind, target = next(iter(ready.items())) if ready else (None, "")
        target = _fill(target, values)
        pattern = re.compile(target, re.MULTILINE) if kind == "log" else None
        deadline = time.monotonic() + self.spec.start_timeout
        while True:
            if self._proc.poll() is not None:
                self._fail(f"exited with code {self._proc.returncode} before it was ready")
            remaining = deadline - time.monotonic()
            if self._probe(kind, target, pattern, max(0.05, min(1.0, remaining))):
                # a process that dies while answering is not ready
                if self._proc.poll() is None:
                    return
                continue
            if remaining <= 0:
                probe = f"{kind} {target}" if kind else "process"
                self._fail(f"not ready after {self.spec.start_timeout:g} s (waiting on {probe})")
            time.sleep(min(_POLL, max(remaining, 0.0)))

    def _probe(self, kind: str | None, target: str, pattern: re.Pattern[str] | None, timeout: float) -> bool:
        if kind is None:
            return True
        if kind == "http":
            try:
                response = httpx.get(target, timeout=timeout)
            except httpx.HTTPError:
                return False
            return 200 <= response.status_code < 400
        if kind == "tcp":
            host, _, port = target.rpartition(":")
            try:
                with socket.create_connection((host or HOST, int(port)), timeout=timeout):
                    return True
            except OSError:
                return False
        assert pattern is not None
        return pattern.search(self._tail(10**9, self._log_offset)) is not None

    def _fail(self, what: str) -> None:
        self.stop()
        code = self.exit_code()
        lines = self._tail(20, self._log_offset)
        message = f"SUT instance {self.instance} {what}"
        if "exited with code" not in what:
            message += f"; killed (exit code {code})"
        message += f"; log {self.log_path}, last lines:\n{lines}" if lines else f"; log {self.log_path} is empty"
        raise WorkerError(message, place="tool.testfleet.sut")


