"""Capabilities and requirements: sizes, validation, detection on this machine, and fit."""

from __future__ import annotations

import json
import os
import re
import stat
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from testfleet.errors import UsageError
from testfleet.execution import capabilities as capmod
from testfleet.execution.capabilities import (
    MEMORY_UNITS,
    Capabilities,
    Requirements,
    detect,
    format_memory,
    parse_memory,
    skip_reason,
    unmet,
)

GB, GiB, MiB = 10**9, 2**30, 2**20


@pytest.mark.parametrize(("value", "expected"), [
    (0, 0), (1234, 1234), (2048.0, 2048), ("1024", 1024), ("100B", 100),
    ("512MB", 512 * 10**6), ("8GB", 8 * GB), ("8gb", 8 * GB), ("8GiB", 8 * GiB), ("8gib", 8 * GiB),
    ("1.5G", 3 * GiB // 2), ("256Mi", 256 * MiB), ("2TB", 2 * 10**12), ("1Ti", 2**40),
    ("4K", 4096), ("4KB", 4000), (" 8 GB ", 8 * GB), (".5Gi", GiB // 2), ("1.", 1),
])
def test_parse_memory_table(value, expected):
    assert parse_memory(value) == expected


@pytest.mark.parametrize("value", [
    "", "GB", "8XB", "-1GB", "1e9", "8 G B", "1,5G", "nan", "inf", "1.2.3G", -1, -0.5,
    float("nan"), float("inf"), True, None, [8], "٣GB",
])
def test_parse_memory_rejects_bad_input_naming_value(value):
    with pytest.raises(UsageError) as info:
        parse_memory(value)  # type: ignore[arg-type]
    assert repr(value) in str(info.value)
    assert "expected" in str(info.value)


def test_parse_memory_names_where():
    with pytest.raises(UsageError, match=r"^pyproject.toml: .*'lots'"):
        parse_memory("lots", where="pyproject.toml")


@given(n=st.integers(min_value=0, max_value=10**30), unit=st.sampled_from(sorted(MEMORY_UNITS)),
       upper=st.booleans())
def test_parse_memory_number_times_unit(n, unit, upper):
    text = f"{n}{unit.upper() if upper else unit}"
    assert parse_memory(text) == n * MEMORY_UNITS[unit]


_VALID = re.compile(r"\s*(\d+(\.\d*)?|\.\d+)\s*(" + "|".join(MEMORY_UNITS) + r")\s*", re.IGNORECASE | re.ASCII)


@given(st.text())
def test_parse_memory_anything_else_is_a_usage_error(text):
    if _VALID.fullmatch(text):
        assert parse_memory(text) >= 0
    else:
        with pytest.raises(UsageError):
            parse_memory(text)


def test_format_memory():
    assert format_memory(8 * GB) == "8GB"
    assert format_memory(8 * GiB) == "8GiB"
    assert format_memory(int(23.4 * GB)) == "23.4GB"
    assert format_memory(512) == "512B"


def test_requirements_from_marker_kwargs():
    req = Requirements.from_marker_kwargs(
        {"cpus": 2, "gpus": 1, "memory": "8GB", "resources": {"special": 1}, "labels": {"accelerator": "h100"}},
        where="t.py::test_x")
    assert req == Requirements(cpus=2, gpus=1, memory=8 * GB, resources={"special": 1.0},
                               labels={"accelerator": "h100"})
    assert not req.is_empty
    assert req.key() == "cpus=2,gpus=1,memory=8000000000,res:special=1,label:accelerator=h100"
    assert req.describe() == "cpus=2, gpus=1, memory=8GB, resource special=1, label accelerator=h100"
    assert req.ray_options() == {"num_cpus": 2.0, "num_gpus": 1.0, "memory": 8 * GB, "resources": {"special": 1.0}}


def test_empty_requirements():
    req = Requirements.from_marker_kwargs({}, where="t.py::test_x")
    assert req.is_empty and req.key() == "" and req == Requirements()
    assert Requirements(resources={"special": 0}).is_empty
    assert req.ray_options() == {}


@pytest.mark.parametrize(("kwargs", "key"), [
    ({"gpu": 1}, "gpu"),
    ({"cpus": -1}, "cpus"),
    ({"gpus": "one"}, "gpus"),
    ({"gpus": True}, "gpus"),
    ({"cpus": float("nan")}, "cpus"),
    ({"memory": "lots"}, "memory"),
    ({"memory": [1]}, "memory"),
    ({"resources": {"special": -2}}, "special"),
    ({"resources": ["special"]}, "resources"),
    ({"resources": {"special": "x"}}, "special"),
    ({"labels": {"accelerator": 100}}, "accelerator"),
    ({"labels": "h100"}, "labels"),
])
def test_requirements_validation_names_where_and_key(kwargs, key):
    with pytest.raises(UsageError) as info:
        Requirements.from_marker_kwargs(kwargs, where="tests/t.py::test_gpu")
    text = str(info.value)
    assert text.startswith("tests/t.py::test_gpu: ")
    assert key in text


def test_merge():
    a = Requirements(cpus=2, memory=GB, resources={"x": 1, "y": 3}, labels={"zone": "a"})
    b = Requirements(gpus=1, memory=4 * GB, resources={"x": 2}, labels={"accelerator": "h100"})
    assert a.merge(b) == Requirements(cpus=2, gpus=1, memory=4 * GB, resources={"x": 2, "y": 3},
                                      labels={"zone": "a", "accelerator": "h100"})
    assert a.merge(b) == b.merge(a)
    assert a.merge(Requirements()) == a
    with pytest.raises(UsageError, match=r"t\.py::x: conflicting label 'zone'"):
        a.merge(Requirements(labels={"zone": "b"}), where="t.py::x")


def test_key_is_stable_and_order_independent():
    a = Requirements(resources={"b": 1, "a": 2}, labels={"y": "1", "x": "2"}, gpus=0.5)
    b = Requirements(gpus=0.5, labels={"x": "2", "y": "1"}, resources={"a": 2.0, "b": 1.0})
    assert a.key() == b.key() == "gpus=0.5,res:a=2,res:b=1,label:x=2,label:y=1"
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert Requirements(cpus=1).key() != Requirements(gpus=1).key()


def test_requirements_do_not_alias_caller_dicts():
    resources = {"x": 1}
    req = Requirements(resources=resources)
    resources["x"] = 5
    assert req.resources == {"x": 1}


def test_detect_on_this_machine():
    caps = detect(resources={"special": 2}, labels={"zone": "lab"})
    assert caps.cpus >= 1
    assert caps.memory > 0
    assert caps.python == "{}.{}.{}".format(*sys.version_info[:3])
    assert caps.hostname and caps.os and caps.cpu_model
    assert caps.resources == {"special": 2.0} and caps.labels == {"zone": "lab"}
    assert all(set(g) == {"name", "memory"} for g in caps.gpus)
    assert Capabilities.from_dict(json.loads(json.dumps(caps.to_dict()))) == caps


def test_detect_validates_settings():
    with pytest.raises(UsageError, match=r"^\[tool.testfleet\]: .*special"):
        detect(resources={"special": -1}, where="[tool.testfleet]")


def _fake_smi(tmp_path, monkeypatch, body: str) -> None:
    script = tmp_path / "nvidia-smi"
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")


@pytest.mark.skipif(sys.platform == "win32", reason="shell script as a fake nvidia-smi")
def test_gpus_from_nvidia_smi(tmp_path, monkeypatch):
    _fake_smi(tmp_path, monkeypatch, 'echo "NVIDIA H100 80GB HBM3, 81559"')
    assert detect().gpus == [{"name": "NVIDIA H100 80GB HBM3", "memory": 81559 * 2**20}]


@pytest.mark.skipif(sys.platform == "win32", reason="shell script as a fake nvidia-smi")
@pytest.mark.parametrize("body", ['echo "NVIDIA-SMI has failed"; exit 1', 'echo "garbage"'])
def test_failing_nvidia_smi_means_no_gpus(tmp_path, monkeypatch, body):
    _fake_smi(tmp_path, monkeypatch, body)
    monkeypatch.setattr(capmod.importlib.util, "find_spec", lambda name: pytest.fail("torch consulted"))
    assert detect().gpus == []


def _caps(**kw) -> Capabilities:
    base = {"hostname": "n1", "cpus": 8, "memory": int(23.4 * GB), "gpus": [], "resources": {}, "labels": {}}
    return Capabilities(**{**base, **kw})


def test_unmet_lists_each_missing_requirement():
    req = Requirements(cpus=16, gpus=1, memory=64 * GB, resources={"special": 1}, labels={"accelerator": "h100"})
    assert unmet(req, _caps()) == [
        "cpus=16 (this machine has 8)",
        "gpus=1 (this machine has 0)",
        "memory=64GB (this machine has 23.4GB)",
        "resource 'special'=1 (not offered)",
        "label accelerator=h100 (this machine: none)",
    ]
    assert unmet(Requirements(labels={"accelerator": "h100"}), _caps(labels={"accelerator": "a100"})) == [
        "label accelerator=h100 (this machine: a100)"]
    assert unmet(Requirements(resources={"special": 2}), _caps(resources={"special": 1})) == [
        "resource 'special'=2 (this machine has 1)"]


def test_unmet_empty_when_it_fits():
    gpu = {"name": "NVIDIA H100", "memory": 80 * GiB}
    caps = _caps(gpus=[gpu, gpu], resources={"special": 2}, labels={"accelerator": "h100"})
    req = Requirements(cpus=8, gpus=2, memory=8 * GB, resources={"special": 1.5}, labels={"accelerator": "h100"})
    assert unmet(req, caps) == []
    assert unmet(Requirements(gpus=0.5), _caps(gpus=[gpu])) == []
    assert unmet(Requirements(), _caps(cpus=1, memory=0)) == []


def test_skip_reason():
    gpu_node = _caps(hostname="gpu", gpus=[{"name": "H100", "memory": 80 * GiB}], memory=512 * GB)
    cpu_node = _caps(hostname="cpu")
    req = Requirements(gpus=1, memory=8 * GB)
    assert skip_reason(req, [cpu_node, gpu_node]) is None
    assert skip_reason(Requirements(), [cpu_node]) is None
    assert skip_reason(req, []) is None
    assert skip_reason(req, [cpu_node]) == (
        "requires gpus=1, memory=8GB: no worker offers it (gpus=1 (this machine has 0))")
    # the closest node (fewest unmet) is the one explained
    big = Requirements(gpus=1, memory=1000 * GB)
    assert skip_reason(big, [cpu_node, gpu_node]) == (
        "requires gpus=1, memory=1TB: no worker offers it (memory=1TB (this machine has 512GB))")
    assert skip_reason(Requirements(gpus=2, memory=100 * GB), [cpu_node, gpu_node]).endswith(
        "(gpus=2 (this machine has 1))")


def test_capabilities_from_ray_node():
    node = {"NodeManagerHostname": "w1", "Resources": {"CPU": 16.0, "GPU": 2.0, "memory": 6.4e10,
            "object_store_memory": 1e10, "node:10.0.0.1": 1.0, "accelerator_type:H100": 1.0, "special": 4.0},
            "Labels": {"zone": "a"}}
    caps = Capabilities.from_ray_node(node)
    assert (caps.hostname, caps.cpus, caps.memory, len(caps.gpus)) == ("w1", 16, 64 * GB, 2)
    assert caps.resources == {"special": 4.0} and caps.labels == {"zone": "a"}
    assert unmet(Requirements(gpus=2, resources={"special": 4}, labels={"zone": "a"}), caps) == []
