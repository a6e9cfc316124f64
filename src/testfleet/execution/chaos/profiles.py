"""The chaos profiles ``mild``, ``moderate`` and ``severe``, as data.

A profile says which faults it injects (with a weight each), how often (a mean interval: the gaps
are drawn from an exponential distribution, so faults arrive as a Poisson stream), how long each
lasts and how hard it hits. Its schedule is drawn from the run's seed, so the same ``--seed``
injects the same faults at the same times (targets named ``any`` are picked, with the same
seeded generator, among the workers alive at that moment).

Faults that need a SUT instance (the network path, kill/pause of the SUT) are left out when the
run declares no ``[tool.testfleet.sut]``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from testfleet.execution.chaos.schedule import NEEDS_SUT, Injection


@dataclass(frozen=True)
class ProfileFault:
    fault: str
    weight: float
    duration: tuple[float, float] = (0.0, 0.0)  # seconds, drawn uniformly in this range
    params: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Profile:
    name: str
    mean_interval: float  # seconds between two faults on average
    first_after: float  # no fault before this (the fleet is starting)
    faults: tuple[ProfileFault, ...]


PROFILES: dict[str, Profile] = {
    "mild": Profile("mild", mean_interval=12.0, first_after=2.0, faults=(
        ProfileFault("latency", 3, (2, 5), {"ms": 100, "jitter_ms": 50}),
        ProfileFault("stop_worker", 2, (1, 2)),
        ProfileFault("pause_sut", 1, (1, 2)),
        ProfileFault("http_error", 1, (2, 4), {"share": 0.1, "status": 503}),
    )),
    "moderate": Profile("moderate", mean_interval=6.0, first_after=1.5, faults=(
        ProfileFault("kill_worker", 2),
        ProfileFault("stop_worker", 2, (2, 4)),
        ProfileFault("kill_sut", 1),
        ProfileFault("pause_sut", 1, (2, 3)),
        ProfileFault("latency", 2, (3, 6), {"ms": 300, "jitter_ms": 100}),
        ProfileFault("http_error", 2, (3, 5), {"share": 0.25, "status": 503}),
        ProfileFault("fill_memory", 1, (3, 5), {"mib": 128}),
    )),
    "severe": Profile("severe", mean_interval=3.0, first_after=1.0, faults=(
        ProfileFault("kill_worker", 3),
        ProfileFault("stop_worker", 2, (3, 6)),
        ProfileFault("kill_sut", 2),
        ProfileFault("pause_sut", 2, (3, 5)),
        ProfileFault("latency", 1, (4, 8), {"ms": 800, "jitter_ms": 300}),
        ProfileFault("bandwidth", 1, (4, 8), {"kbps": 64}),
        ProfileFault("reset_peer", 2, (2, 4), {"share": 0.5}),
        ProfileFault("timeout", 1, (2, 4)),
        ProfileFault("http_error", 2, (3, 6), {"share": 0.5, "status": 503}),
        ProfileFault("fill_memory", 1, (3, 6), {"mib": 256}),
    )),
}


class ProfileSchedule:
    """A profile's endless stream of injections, drawn from ``seed``."""

    def __init__(self, profile: Profile, seed: int, *, has_sut: bool = True) -> None:
        self.profile = profile
        self.seed = seed
        self.name = profile.name
        self.faults = [f for f in profile.faults if has_sut or f.fault not in NEEDS_SUT]

    def upcoming(self) -> Iterator[Injection]:
        if not self.faults:
            return
        rng = random.Random(f"chaos:{self.profile.name}:{self.seed}")
        weights = [f.weight for f in self.faults]
        at = self.profile.first_after
        seq = 0
        while True:
            at += rng.expovariate(1.0 / self.profile.mean_interval)
            chosen = rng.choices(self.faults, weights)[0]
            low, high = chosen.duration
            duration = round(rng.uniform(low, high), 2) if high > 0 else 0.0
            yield Injection(round(at, 3), seq, chosen.fault, "any", duration, dict(chosen.params))
            seq += 1


def profile_schedule(name: str, seed: int, *, has_sut: bool = True) -> ProfileSchedule:
    return ProfileSchedule(PROFILES[name], seed, has_sut=has_sut)
