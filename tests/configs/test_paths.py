"""Key paths: flatten and unflatten are exact inverses, set_path copies, bad paths are ConfigErrors."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from testfleet.configs import flatten, set_path, unflatten
from testfleet.configs.paths import format_path, parse_path, walk
from testfleet.errors import ConfigError

awkward_keys = st.text() | st.sampled_from(["", ".", "a.b", "[0]", "]", "[", '"', '["x"]', "\\", "a b", "0"])
leaves = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
          | st.just({}) | st.just([]))
nested = st.recursive(leaves, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(awkward_keys, inner,
                                                                                           max_size=4),
                      max_leaves=24)


@given(nested)
@example({"a": {"x.y": [1, {"": 2}]}, "b": {}, "c": [], "[0]": {"]": [[None]]}})
@example([])
@example("scalar")
def test_unflatten_inverts_flatten(data: Any) -> None:
    flat = flatten(data)
    assert unflatten(flat) == data
    assert all(isinstance(path, str) for path in flat)


@given(st.lists(st.integers(0, 50) | awkward_keys, max_size=6))
def test_parse_path_inverts_format_path(parts: list[Any]) -> None:
    assert parse_path(format_path(parts)) == parts


def test_flatten_spells_paths_readably() -> None:
    data = {"server": {"port": 80, "hosts": ["a", {"name": "b"}]}, "labels": {"app.kubernetes.io/name": "x"},
            "": 1, "empty": {}, "none": []}
    assert flatten(data) == {
        "server.port": 80, "server.hosts[0]": "a", "server.hosts[1].name": "b",
        'labels["app.kubernetes.io/name"]': "x", '[""]': 1, "empty": {}, "none": [],
    }
    assert flatten([{"a": 1}, 2]) == {"[0].a": 1, "[1]": 2}
    assert flatten({}) == {} and unflatten({}) == {}
    assert flatten(5) == {"": 5} and unflatten({"": 5}) == 5


def test_flatten_refuses_non_string_keys_and_cycles() -> None:
    with pytest.raises(ConfigError) as caught:
        flatten({"a": {1: "x"}})
    assert caught.value.place == "a[1]" and "key 1 is not a string" in caught.value.message
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ConfigError, match="contains itself"):
        flatten({"a": loop})
    assert [parts for parts, _ in walk({"a": loop})] == [(), ("a",), ("a", 0)]  # walk does not loop


@pytest.mark.parametrize("path", ["a..b", ".a", "a.", "a[", "a[x]", "a[0", 'a["x]', 'a["x"', "a]", "a[0]b",
                                  "a.[0]", "[-1]"])
def test_malformed_paths_are_config_errors(path: str) -> None:
    with pytest.raises(ConfigError, match="malformed key path") as caught:
        parse_path(path)
    assert caught.value.place and caught.value.place.startswith("column ")


@pytest.mark.parametrize(("flat", "words", "place"), [
    ({"a": 1, "a.b": 2}, "a holds a value, so no path can go below it", "a.b"),
    ({"a.b": 1, "a": 2}, "a has paths below it", "a"),
    ({"[7]": 1, "[007]": 2}, r"\[7\] is given twice", "[007]"),
    ({"a[0]": 1, "a.b": 2}, "a is used both as a list and as a mapping", "a.b"),
    ({"[0]": 1, "b": 2}, "the root is used both", "b"),
    ({"a[0]": 1, "a[2]": 2}, "index 1 is missing", "a[1]"),
    ({"a[1]": 1}, "index 0 is missing", "a[0]"),
])
def test_unflatten_refuses_conflicting_paths(flat: dict[str, Any], words: str, place: str) -> None:
    with pytest.raises(ConfigError, match=words) as caught:
        unflatten(flat)
    assert caught.value.place == place


def test_unflatten_orders_list_items_by_index() -> None:
    assert unflatten({"a[1]": "y", "a[0]": "x"}) == {"a": ["x", "y"]}


def test_set_path_returns_a_copy_with_one_leaf_replaced() -> None:
    data = {"server": {"port": 80, "hosts": ["a", "b"]}, "x.y": {"z": 1}, "other": {"k": [1]}}
    changed = set_path(data, "server.hosts[1]", "c")
    assert changed == {"server": {"port": 80, "hosts": ["a", "c"]}, "x.y": {"z": 1}, "other": {"k": [1]}}
    assert data["server"]["hosts"] == ["a", "b"]  # untouched
    assert set_path(data, '["x.y"].z', 2)["x.y"] == {"z": 2}
    assert set_path(data, "server.tls", True)["server"] == {"port": 80, "hosts": ["a", "b"], "tls": True}
    assert set_path(data, "", 5) == 5
    assert set_path([1, [2, 3]], "[1][0]", 9) == [1, [9, 3]]


@pytest.mark.parametrize(("path", "place"), [
    ("server.hosts[2]", "server.hosts[2]"),
    ("server.port.x", "server.port.x"),
    ("server[0]", "server[0]"),
    ("missing.x", "missing"),
])
def test_set_path_refuses_paths_that_do_not_exist(path: str, place: str) -> None:
    with pytest.raises(ConfigError) as caught:
        set_path({"server": {"port": 80, "hosts": ["a", "b"]}}, path, 1)
    assert caught.value.place == place


@given(nested.filter(lambda d: isinstance(d, dict | list) and d != {}), st.data())
def test_set_path_replaces_exactly_the_leaf_it_names(data: Any, draw: st.DataObject) -> None:
    flat = flatten(data)
    path = draw.draw(st.sampled_from(sorted(flat)))
    changed = set_path(data, path, "REPLACED")
    assert flatten(changed) == {**flat, path: "REPLACED"}
    assert flatten(data) == flat
