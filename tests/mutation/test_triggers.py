"""Trigger conditions: parsed safely, names resolved through the alias table, evaluated on an
execution's telemetry summary; a metric that was not measured never fires a rule."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testfleet.mutation.errors import RulesetError
from testfleet.mutation.triggers import ALIASES, Trigger, resolve

PROPERTY = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])
SUMMARY = {
    "sut.cpu_percent": {"mean": 85.0, "max": 99.0, "p95": 97.0, "delta": 0.0, "count": 10},
    "sut.rss_mb": {"mean": 400.0, "max": 612.5, "p95": 600.0, "delta": 50.0, "count": 10},
    "http.latency_ms": {"mean": 120.0, "max": 900.0, "p95": 250.0, "delta": 0.0, "count": 40},
    "sut.fds": {"mean": 30, "max": 70, "p95": 65, "delta": 2, "count": 10},
    "system.cpu_percent": {"mean": 40.0, "max": 60.0, "p95": 55.0, "delta": 0.0, "count": 10},
    "custom.queue_depth": {"mean": 3.0, "max": 12.0, "p95": 10.0, "delta": 0.0, "count": 5},
}


@pytest.mark.parametrize(("text", "expected"), [
    ("CPU_load > 80%", True),
    ("cpu_load > 90%", False),
    ("cpu >= 85", True),
    ("latency_p95_ms > 200 and rss_mb > 500", True),
    ("latency_p95_ms > 300 or rss_mb > 700", False),
    ("latency_ms < 200", True),
    ("memory_mb == 612.5", True),
    ("fds > 64", True),
    ("system_cpu > 50", False),
    ("sut.rss_mb.p95 >= 600", True),
    ("sut.rss_mb > 600", True),  # memory is judged on its max
    ("http.latency_ms > 200", True),  # latency on its p95
    ("custom.queue_depth.mean < 5 and custom.queue_depth > 10", True),  # custom.*: max
    ("sut.cpu_percent.count == 10", True),
    ("duration > 1.5s", True),
    ("duration_s < 2000ms", True),
    ("not (CPU_load > 80%)", False),
    ("max(cpu, system_cpu) > 80 -> fds > 10", True),
])
def test_triggers_evaluate_on_a_summary(text: str, expected: bool) -> None:
    trigger = Trigger.parse(text, source="r.yaml", place="rule 1")
    assert trigger.holds(SUMMARY, duration=1.75) is expected


def test_a_missing_metric_makes_the_trigger_false() -> None:
    trigger = Trigger.parse("CPU_load > 80% or latency_p95_ms > 1")
    assert not trigger.holds({"sut.cpu_percent": {"mean": 99.0}})  # latency never measured
    assert not trigger.holds({})
    assert not trigger.holds(None)
    assert not Trigger.parse("duration > 1").holds(SUMMARY, None)
    assert not Trigger.parse("cpu > 1").holds({"sut.cpu_percent": {"mean": float("nan")}})
    assert not Trigger.parse("cpu > 1").holds({"sut.cpu_percent": "oops"})
    assert not Trigger.parse("not cpu > 1").holds({})  # not even through a negation


def test_values_are_what_the_trigger_saw() -> None:
    trigger = Trigger.parse("latency_p95_ms > 200 and rss_mb > 500 and duration > 1")
    assert trigger.values(SUMMARY, 2.0) == {"latency_p95_ms": 250.0, "rss_mb": 612.5,
                                            "duration": 2.0}
    assert trigger.values({}, None) == {"latency_p95_ms": None, "rss_mb": None,
                                        "duration": None}


def test_alias_table() -> None:
    assert ALIASES["CPU_load"] == ("sut.cpu_percent", "mean")
    assert ALIASES["latency_p95_ms"] == ("http.latency_ms", "p95")
    assert ALIASES["rss_mb"] == ("sut.rss_mb", "max")
    assert resolve("sut.threads") == ("sut.threads", "max")
    assert resolve("worker.rss_mb.mean") == ("worker.rss_mb", "mean")
    assert resolve("prom.requests_total") == ("prom.requests_total", "mean")
    assert resolve("nope") is None and resolve("sut") is None and resolve("db.size") is None


@pytest.mark.parametrize(("text", "words"), [
    ("cpu_lod > 80", "unknown name 'cpu_lod'"),
    ("db.pool > 3", "unknown name 'db.pool'"),
    ("CPU_load >", "bad trigger"),
    ("CPU_load > 80 %", "bad trigger"),
    ("__import__('os').system('x')", "bad trigger"),
    ("open('x') > 1", "unknown function"),
    ("", "empty"),
])
def test_bad_triggers_name_file_place_and_the_aliases(text: str, words: str) -> None:
    with pytest.raises(RulesetError) as caught:
        Trigger.parse(text, source="r.yaml", place="rule 3 (X) field trigger_condition")
    message = str(caught.value)
    assert message.startswith("r.yaml [rule 3 (X) field trigger_condition")
    assert words in message
    if "unknown name" in words:
        assert "CPU_load" in message and "latency_p95_ms" in message


def test_percent_is_the_number_itself_but_modulo_still_works() -> None:
    assert Trigger.parse("cpu > 80%").holds({"sut.cpu_percent": {"mean": 81}})
    assert Trigger.parse("cpu % 2 == 1").holds({"sut.cpu_percent": {"mean": 81}})
    assert Trigger.parse("cpu > 10% * 8").holds({"sut.cpu_percent": {"mean": 81}})


_ALPHABET = st.sampled_from(list("()<>=!%&|+-*/., '\"`[]") + ["cpu", "rss_mb", "and", "or",
                                                                 "not", "80", "80%", "1.5s",
                                                                 "sut.fds.max", "x", "max("])


@PROPERTY
@given(st.one_of(st.text(max_size=40), st.lists(_ALPHABET, max_size=12).map(" ".join)))
def test_arbitrary_text_parses_or_raises_ruleset_error(text: str) -> None:
    try:
        trigger = Trigger.parse(text, source="p.yaml", place="rule 1")
    except RulesetError as exc:
        assert str(exc).startswith("p.yaml")
        return
    assert isinstance(trigger.holds(SUMMARY, 1.0), bool)
    assert isinstance(trigger.holds({}, None), bool)
