"""``generate(space, "pairwise", seed=1)``, as the README shows it, gives points a user can
iterate and index: parameter dicts."""

from __future__ import annotations

from testfleet import Choice, Int, Space
from testfleet.space.sampling import generate


def test_generated_points_iterate_and_index_as_parameter_dicts() -> None:
    space = Space(threads=Int(1, 64), cpus=Choice([1, 2, 4, 8]),
                  constraints=["threads <= cpus * 2"])
    points = generate(space, "pairwise", seed=1)
    listed = list(points)
    assert listed and all(set(p) == {"threads", "cpus"} for p in listed)
    assert all(p["threads"] <= p["cpus"] * 2 for p in points)
    assert points[0] == listed[0] and points[-1] == listed[-1] and points[:2] == listed[:2]
    assert len(points) == len(listed) and listed[1] in points
    assert [p.params for p in points.points] == listed  # origins are still there
    assert {p.origin for p in points.points} == {"pairwise"}
