"""The Ray backend: the same workers as Ray actors, on a local Ray instance or a cluster.

Ray does the distributed work (placement, resources, labels, shipping code, noticing dead
nodes); testfleet adds no protocol of its own. Each worker is an actor that runs the very same
pytest plugin as a local worker, in a thread, with a queue-backed channel in place of the Unix
socket: the coordinator pushes protocol messages with ``actor.push`` and collects the worker's
messages by keeping one ``actor.pull`` call in flight per actor (``ray.wait`` multiplexes them).
The actor hands its messages over encoded (:func:`protocol.encode`), and the coordinator reads
them with :func:`protocol.decode`, as the local backend reads its socket: a value of a class
only the test session can import is named (``UnreadableMessage``), not a crash inside Ray.
An actor that dies makes its pending ``pull`` fail, which is reported as a lost worker.

Every actor collects the suite itself (``workers_collect``), as spawned local workers do. Tests
with requirements run on actors created with those requirements as Ray resources and label
selectors, one actor per distinct set ("pool"); the scheduler routes each test to its pool.

Each actor reports the Ray node it runs on (:meth:`RayBackend.node_of`, asked once when it is
made and kept after it is gone). A node the coordinator quarantines (escalating recovery, level 5:
:mod:`testfleet.execution.recovery`) is excluded from the placement of every actor made afterwards
with Ray's node-id label, ``label_selector={"ray.io/node-id": "!in(...)"}``, a hard constraint
beside the pool's own selectors (:meth:`RayBackend.exclude_node`); the last alive node not yet
excluded is never excluded, so that a worker can always be placed somewhere.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray

from testfleet.errors import UsageError, WorkerError
from testfleet.execution import protocol as P
from testfleet.execution.backends.base import (
    Backend,
    CollectedEvent,
    Event,
    HelloEvent,
    LostEvent,
    MessageEvent,
)
from testfleet.execution.capabilities import Capabilities, Requirements

PULL_SECONDS = 1.0
PULL_GAP = 0.002
PULL_MAX = 500
NODE_ID_LABEL = "ray.io/node-id"  # the label Ray gives every node (ray._raylet.RAY_NODE_ID_KEY)
NODE_WAIT = 30.0  # seconds to learn an actor's node (it answers once made; a dead one fails at once)
ALWAYS_EXCLUDED = [".testfleet/", ".git/", "__pycache__/", ".venv/", ".tox/"]


class _Channel:
    """What the worker plugin talks to inside an actor: a Connection's surface over two queues."""

    closed = False
    _EMPTY = object()

    def __init__(self, inbox: queue.Queue[Any], outbox: queue.Queue[Any]) -> None:
        self.inbox, self.outbox = inbox, outbox
        self.peeked: Any = self._EMPTY  # a message poll() waited for and recv() has not taken yet

    def send(self, message: Any) -> None:
        self.outbox.put(message)

    def recv(self) -> Any:
        if self.peeked is not self._EMPTY:
            message, self.peeked = self.peeked, self._EMPTY
        else:
            message = self.inbox.get()
        if message is None:
            raise EOFError
        return message

    def poll(self, timeout: float = 0.0) -> bool:
        if self.peeked is not self._EMPTY:
            return True
        try:
            self.peeked = self.inbox.get(timeout=timeout) if timeout else self.inbox.get_nowait()
        except queue.Empty:
            return False
        return True

    def close(self) -> None:  # the channel outlives the plugin's connections
        pass


class PytestActor:
    """A worker as a Ray actor (wrapped with ``ray.remote`` when used)."""

    def __init__(self, worker_id: str, pytest_args: list[str], cwd: str | None = None) -> None:
        if cwd:  # a local Ray instance: the suite's files are right here
            os.chdir(cwd)
        self.inbox: queue.Queue[Any] = queue.Queue()
        self.outbox: queue.Queue[Any] = queue.Queue()
        self.order_lock = threading.Lock()
        self.held: dict[int, Any] = {}
        self.next_seq = 0
        self.worker_id = worker_id
        self.pytest_args = pytest_args
        self.thread = threading.Thread(target=self._main, name="testfleet-pytest", daemon=True)
        self.thread.start()

    def _main(self) -> None:
        import pytest

        from testfleet.execution.pytest_worker import WorkerPlugin

        channel = _Channel(self.inbox, self.outbox)
        plugin = WorkerPlugin(mode="worker", worker_id=self.worker_id, rundir=tempfile.mkdtemp(prefix="testfleet-"),
                              connector=lambda: channel)
        try:
            code = int(pytest.main(list(self.pytest_args), plugins=[plugin]))
        except BaseException:  # noqa: BLE001 - whatever happened, the coordinator must hear the end
            code = 3
        self.outbox.put(P.Exited(self.worker_id, os.getpid(), code))

    def push(self, seq: int, message: Any) -> None:
        """Deliver the coordinator's message number ``seq``. A threaded actor may run calls out of
        order, so messages are released to the worker strictly in the order they were sent."""
        with self.order_lock:
            self.held[seq] = message
            while self.next_seq in self.held:
                self.inbox.put(self.held.pop(self.next_seq))
                self.next_seq += 1

    def pull(self, timeout: float) -> list[bytes]:
        """The worker's messages, encoded: waits up to ``timeout`` for the first, then takes the
        ones that follow closely (fast tests) so one actor call carries many results; returns as
        soon as the worker goes quiet for ``PULL_GAP`` seconds, so a slow test's result is not
        held back."""
        try:
            messages = [P.encode(self.outbox.get(timeout=timeout))]
        except queue.Empty:
            return []
        while len(messages) < PULL_MAX:
            try:
                messages.append(P.encode(self.outbox.get(timeout=PULL_GAP)))
            except queue.Empty:
                break
        return messages

    def signal(self, signum: int) -> None:
        os.kill(os.getpid(), signum)

    def pid(self) -> int:
        return os.getpid()

    def node_id(self) -> str:
        """The Ray node this actor lives on (a grant places its specialist beside it)."""
        return str(ray.get_runtime_context().get_node_id())


def _end(actor: Any) -> None:
    """Kill an actor for good; one that is already gone is fine."""
    if actor is None:
        return
    try:
        ray.kill(actor, no_restart=True)
    except Exception:  # noqa: BLE001 - already gone
        pass


def _probe(address: str) -> None:
    """Refuse an address where nothing listens at once (Ray itself retries for minutes)."""
    if address == "auto":
        return
    target = address.split("://", 1)[-1]
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise UsageError(f"nothing answers at {address}: {exc.strerror or exc}", place="--ray-address",
                         expected="the address of a running Ray cluster (ray start --head prints it)") from None


@ray.remote(num_cpus=0)
def _node_capabilities(resources: dict[str, float], labels: dict[str, str]) -> dict[str, Any]:
    from testfleet.execution.capabilities import detect

    return detect(resources=resources, labels=labels).to_dict()


class RayBackend(Backend):
    name = "ray"

    def __init__(self, pytest_args: list[str], *, workers: int, address: str | None = None,
                 cwd: str | os.PathLike[str] | None = None, pip: list[str] | None = None,
                 env: dict[str, str] | None = None, pools: dict[str, Requirements] | None = None,
                 excludes: list[str] | None = None) -> None:
        self.pytest_args = list(pytest_args)
        self.workers = workers
        self.address = address
        self.cwd = Path(cwd or os.getcwd())
        self.pip = list(pip or [])
        self.env = dict(env or {})
        self.pools = dict(pools or {})
        self.excludes = [*ALWAYS_EXCLUDED, *(excludes or [])]
        self.actors: dict[str, Any] = {}
        self.pulls: dict[Any, str] = {}
        self.sent: dict[str, int] = {}  # messages sent to each actor, to number the next one
        self.node_refs: dict[str, Any] = {}  # worker id -> the pending answer of its actor's node_id()
        self.nodes: dict[str, str | None] = {}  # worker id -> the Ray node its actor ran on
        self.excluded: set[str] = set()  # nodes no new actor may be placed on (quarantined)
        self._actor_class: Any = None

    @property
    def workers_collect(self) -> bool:
        return True

    def runtime_env(self) -> dict[str, Any]:
        """What ships with the job. A Ray instance testfleet starts itself shares this machine's
        files, so its actors work in the directory in place and nothing is packaged or uploaded."""
        import testfleet

        if not self.address:
            return {"env_vars": dict(self.env)}
        env: dict[str, Any] = {
            "working_dir": str(self.cwd),
            "excludes": list(self.excludes),
            # testfleet's own code travels with the job, so the cluster needs only its dependencies
            "py_modules": [str(Path(testfleet.__file__).parent)],
            "env_vars": dict(self.env),
        }
        if self.pip:
            env["pip"] = list(self.pip)
        return env

    def start(self) -> None:
        if self._actor_class is not None:
            return
        kwargs: dict[str, Any] = {"runtime_env": self.runtime_env(), "log_to_driver": False,
                                  "ignore_reinit_error": True, "include_dashboard": False,
                                  "logging_level": logging.WARNING}
        if self.address:
            _probe(self.address)
            kwargs["address"] = self.address
        else:
            # "local": a new instance, never a cluster named by $RAY_ADDRESS or left by `ray start`.
            kwargs["address"] = "local"
            # A local instance on loopback only; the CPUs are ours to use, one worker per CPU.
            kwargs.update(_node_ip_address="127.0.0.1", num_cpus=max(self.workers, os.cpu_count() or 1))
        try:
            ray.init(**kwargs)
        except ray.exceptions.RuntimeEnvSetupError as exc:
            # Ray's refusal of the job's files, e.g. a working_dir over its upload limit.
            detail = str(exc).replace("Failed to set up runtime environment.", "").strip().splitlines()
            raise UsageError(f"Ray refused the job's files: {detail[0] if detail else exc}",
                             source=str(self.cwd), place="runtime_env working_dir",
                             expected="a directory under Ray's upload limit: list large files in "
                                      ".gitignore or .rayignore") from None
        except ConnectionError as exc:
            raise UsageError(f"cannot reach the Ray cluster: {exc}", place="--ray-address") from None
        except ValueError as exc:
            raise UsageError(f"Ray refused to start: {exc}", place="--backend ray") from None
        # ray's typed overloads of remote() list only task options; max_concurrency is an actor
        # option it accepts (ray/_common/ray_option_utils.py, actor_options)
        self._actor_class = ray.remote(max_concurrency=4)(PytestActor)  # type: ignore[call-overload]

    def bus_relay(self) -> Callable[[list[dict[str, Any]]], None]:
        """A sink for the coordinator's bus that forwards each message to the run's bus actor,
        which the job's tasks and actors read live (:mod:`testfleet.execution.bus_relay`)."""
        from testfleet.execution.bus_relay import ray_relay

        return ray_relay()

    def capabilities(self) -> list[Capabilities]:
        """What each alive node of the cluster offers (from Ray's own view of its resources)."""
        return [Capabilities.from_ray_node(node) for node in ray.nodes()  # type: ignore[no-untyped-call]
                if node.get("Alive")]

    @property
    def routes_requirements(self) -> bool:
        return True

    def request_capacity(self, wanted: list[Requirements]) -> None:
        """Ask the cluster's autoscaler for nodes that fit ``wanted`` (an empty list withdraws the
        request, which Ray keeps until the next call). Labels are not asked for; a cluster without
        an autoscaler ignores the request."""
        from ray.autoscaler.sdk import request_resources

        bundles = [{k: v for k, v in {"CPU": r.cpus or 1, "GPU": r.gpus, "memory": r.memory,
                                      **r.resources}.items() if v} for r in wanted]
        request_resources(bundles=bundles)

    def define_pool(self, key: str, requirements: Requirements) -> None:
        self.pools[key] = requirements

    def spawn_worker(self, worker_id: str, pool: str = "") -> None:
        requirements = self.pools.get(pool, Requirements())
        # A default worker takes one CPU; a worker made for requirements takes exactly what they
        # ask for, so it can be placed on a node whose CPUs the default workers already hold.
        options: dict[str, Any] = {"num_cpus": 1 if not pool else requirements.cpus, **requirements.ray_options()}
        self._start_actor(worker_id, options, dict(requirements.labels))

    def spawn_reserved(self, worker_id: str, cpus: float, node: str | None = None) -> None:
        """A worker that reserves ``cpus`` of the cluster (a specialisation grant,
        execution/specialise_ray.py), on ``node`` when that node has them (a soft affinity)."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        options: dict[str, Any] = {"num_cpus": cpus}
        if node:
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node_id=node, soft=True)
        self._start_actor(worker_id, options, {})

    def _start_actor(self, worker_id: str, options: dict[str, Any], selector: dict[str, str]) -> None:
        if self.excluded:  # quarantined nodes: a hard constraint beside the pool's own selectors
            selector[NODE_ID_LABEL] = f"!in({','.join(sorted(self.excluded))})"
        if selector:
            options["label_selector"] = selector
        cwd = None if self.address else str(self.cwd)
        actor = self._actor_class.options(**options).remote(worker_id, self.pytest_args, cwd)
        self.actors[worker_id] = actor
        self.node_refs[worker_id] = actor.node_id.remote()  # runs once the actor is placed and made
        self.pulls[actor.pull.remote(PULL_SECONDS)] = worker_id

    def node_of(self, worker_id: str) -> str | None:
        if worker_id not in self.nodes:
            ref = self.node_refs.pop(worker_id, None)
            if ref is None:
                return None
            try:
                self.nodes[worker_id] = str(ray.get(ref, timeout=NODE_WAIT))
            except Exception:  # noqa: BLE001 - died before it was made, or still unplaced: unknown
                self.nodes[worker_id] = None
        return self.nodes[worker_id]

    def exclude_node(self, node: str) -> str | None:
        alive = {str(n["NodeID"]) for n in ray.nodes() if n.get("Alive")}  # type: ignore[no-untyped-call]
        if not alive - self.excluded - {node}:
            return "it is the last node of the cluster a worker could be placed on"
        self.excluded.add(node)
        return None

    def ask_cpus(self, cpus: float) -> None:
        """Ask the autoscaler for room for one more actor reserving ``cpus``."""
        self.request_capacity([Requirements(cpus=cpus)])

    def free_cpus(self) -> float:
        """CPUs of the cluster that no actor or task holds now."""
        return float(ray.available_resources().get("CPU", 0.0))  # type: ignore[no-untyped-call]

    def send(self, worker_id: str, message: P.CoordinatorMessage) -> bool:
        actor = self.actors.get(worker_id)
        if actor is None:
            return False
        seq = self.sent.get(worker_id, 0)
        self.sent[worker_id] = seq + 1
        actor.push.remote(seq, message)
        return True

    def kill(self, worker_id: str, sig: int) -> None:
        import signal

        actor = self.actors.get(worker_id)
        if actor is None:
            return
        if sig == signal.SIGKILL:
            ray.kill(actor, no_restart=True)
        else:
            actor.signal.remote(sig)

    def poll(self, timeout: float | None) -> list[Event]:
        events: list[Event] = []
        if not self.pulls:
            return events
        ready, _ = ray.wait(list(self.pulls), num_returns=1, timeout=timeout)
        if ready:
            ready, _ = ray.wait(list(self.pulls), num_returns=len(self.pulls), timeout=0)
        for ref in ready:
            worker_id = self.pulls.pop(ref)
            try:
                messages = ray.get(ref)
            except (ray.exceptions.RayActorError, ray.exceptions.ActorDiedError,
                    ray.exceptions.ActorUnavailableError, ray.exceptions.WorkerCrashedError):
                self._lost(worker_id, None, events)
                continue
            ended = False
            for data in messages:
                ended = self._dispatch(worker_id, P.decode(data), events) or ended
            if not ended:
                self.pulls[self.actors[worker_id].pull.remote(PULL_SECONDS)] = worker_id
        return events

    def _dispatch(self, worker_id: str, message: P.WorkerMessage, events: list[Event]) -> bool:
        match message:
            case P.Exited(code=code):  # the actor's pytest session ended
                self._lost(worker_id, code, events)
                return True
            case P.Collected(collection):
                events.append(CollectedEvent(collection))
            case P.Hello(pid=pid):
                events.append(HelloEvent(worker_id, pid))
            case _:
                events.append(MessageEvent(worker_id, message))
        return False

    def _lost(self, worker_id: str, code: int | None, events: list[Event]) -> None:
        _end(self.actors.pop(worker_id, None))
        events.append(LostEvent(worker_id, code))

    def collector_output(self) -> str:
        return ""

    def close(self) -> None:
        for actor in self.actors.values():
            _end(actor)
        self.actors.clear()
        self.pulls.clear()
        if ray.is_initialized():
            ray.shutdown()


def ray_workers_table() -> list[dict[str, Any]]:
    """Hardware of every alive node, detected by a task pinned to each (for ``testfleet workers``);
    the custom resources and labels are those the node offers to Ray."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    refs = []
    for node in ray.nodes():  # type: ignore[no-untyped-call]  # ray leaves it unannotated
        if node.get("Alive"):
            offered = Capabilities.from_ray_node(node)
            labels = {k: v for k, v in offered.labels.items() if not k.startswith("ray.io/")}
            strategy = NodeAffinitySchedulingStrategy(node_id=node["NodeID"], soft=False)
            refs.append(_node_capabilities.options(scheduling_strategy=strategy).remote(offered.resources, labels))
    if not refs:
        raise WorkerError("the Ray cluster has no alive node")
    return ray.get(refs, timeout=60)
