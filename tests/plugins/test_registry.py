"""The registry: plugins found through real entry points (importlib.metadata), the built-ins
through the same hooks, and one clear message for a broken plugin or a name given twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugins.conftest import make_dist
from testfleet.errors import UsageError
from testfleet.mutation.errors import RulesetError
from testfleet.mutation.rules import loads_ruleset
from testfleet.mutation.schema import schema
from testfleet.mutation.triggers import Trigger
from testfleet.plugins import PluginError, registry
from testfleet.plugins.manager import build_registry
from testfleet.plugins.reports import report_targets
from testfleet.settings import Settings

OPERATOR = """
from testfleet.plugins import hookimpl

def _same(ctx):
    yield ctx.current

@hookimpl
def testfleet_add_mutation_operators():
    return {"%s": _same}
"""


def test_the_built_ins_come_through_the_hooks() -> None:
    found = build_registry(entry_points=[])
    assert list(found.operators()) == ["range", "set", "scale", "jitter", "shuffle", "boundary", "grow",
                                       "drop"]
    assert set(found.backends()) == {"local", "ray"}
    assert list(found.reporters()) == ["junit", "json", "md", "allure", "codequality", "html"]
    assert found.reporters()["allure"].folder and found.reporters()["allure"].setting == "alluredir"
    assert set(found.generators()) == {"statistical", "llm"}
    assert list(found.notifiers()) == ["slack", "webhook", "email", "jira", "github"]
    assert found.trigger_metrics()["CPU_load"] == ("sut.cpu_percent", "mean")
    assert list(found.telemetry_sources()) == ["system"] and found.telemetry_sources()["system"].raw
    assert all(info.builtin and info.distribution == "testfleet" for info in found.plugins())


def test_the_runs_own_listeners_come_through_the_hook() -> None:
    from testfleet.plugins.listeners import run_listener

    class Sink:
        def __init__(self) -> None:
            self.seen: list[str] = []

        def on_message(self, text: str) -> None:
            self.seen.append(text)

    console, events = Sink(), Sink()
    found = build_registry(entry_points=[])
    [(plugin, listener, builtin)] = found.run_listeners(None, None, {"console": console, "events": None})
    assert builtin and plugin == "testfleet.cli.listeners" and listener is console
    tee = run_listener(None, None, {"console": console, "events": events})
    tee.on_message("worker gw1 lost")
    assert console.seen == events.seen == ["worker gw1 lost"]


def test_an_installed_plugin_is_found_through_its_entry_point(example_site: Path, monkeypatch, fresh_registry) -> None:
    monkeypatch.syspath_prepend(str(example_site))
    found = registry()
    info = {p.name: p for p in found.plugins()}["example"]
    assert (info.distribution, info.version, info.value) == ("testfleet-plugin-example", "0.1.0",
                                                             "testfleet_plugin_example")
    assert "powers_of_two" in found.operators() and "range" in found.operators()
    assert found.trigger_metrics()["loadavg"] == ("plugin.example.load1", "max")
    assert list(found.telemetry_sources()) == ["system", "example"]
    assert found.reporters()["csv"].setting is None
    assert found.provided()["example"] == {
        "testfleet_add_mutation_operators": ["powers_of_two"],
        "testfleet_add_trigger_metrics": ["loadavg"],
        "testfleet_add_telemetry_sources": ["example"],
        "testfleet_add_reporters": ["csv"],
        "testfleet_run_listener": [],
    }


def test_the_ruleset_schema_and_triggers_accept_the_plugins_names(example_site: Path, monkeypatch,
                                                                   fresh_registry) -> None:
    rules = "rules:\n  - {mutation_name: P, target_parameter: n, variation_type: %s}\n"
    with pytest.raises(RulesetError, match=r"'cubes' is not valid \(expected range \| set") as before:
        loads_ruleset(rules % "cubes")
    assert "powers_of_two" not in str(before.value)  # not installed yet
    assert "powers_of_two" not in schema()["$defs"]["rule"]["properties"]["variation_type"]["enum"]
    with pytest.raises(RulesetError, match="unknown name 'loadavg'"):
        Trigger.parse("loadavg > 1")
    monkeypatch.syspath_prepend(str(example_site))
    from testfleet.plugins import manager

    manager.reset()
    assert loads_ruleset(rules % "powers_of_two").rules[0].variation_type == "powers_of_two"
    assert "powers_of_two" in schema()["$defs"]["rule"]["properties"]["variation_type"]["enum"]
    with pytest.raises(RulesetError, match=r"expected range \| .* \| drop \| powers_of_two\)"):
        loads_ruleset(rules % "cubes")
    assert Trigger.parse("loadavg > 1").reads["loadavg"] == ("plugin.example.load1", "max")
    # a plugin source's full metric name works without an alias
    assert Trigger.parse("plugin.example.load1.p95 > 1").reads == {
        "plugin.example.load1.p95": ("plugin.example.load1", "p95")}


def test_a_name_given_by_two_plugins_names_both(tmp_path: Path, monkeypatch, fresh_registry) -> None:
    make_dist(tmp_path, "first-dist", "tfplug_first", OPERATOR % "twice")
    make_dist(tmp_path, "second-dist", "tfplug_second", OPERATOR % "twice")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError) as caught:
        registry().operators()
    text = str(caught.value)
    assert "mutation operator 'twice' is provided twice" in text
    assert "tfplug_first (first-dist 1.0)" in text and "tfplug_second (second-dist 1.0)" in text
    assert isinstance(caught.value, UsageError)  # testfleet run exits 4 for it


def test_a_plugin_cannot_replace_a_built_in(tmp_path: Path, monkeypatch, fresh_registry) -> None:
    make_dist(tmp_path, "shadow", "tfplug_shadow", OPERATOR % "range")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError, match=r"'range' is provided twice: by testfleet.mutation.operators "
                                          r"\(built-in\) and by tfplug_shadow \(shadow 1.0\)"):
        registry().operators()


def test_a_plugin_that_fails_to_import_is_one_message(tmp_path: Path, monkeypatch, fresh_registry) -> None:
    make_dist(tmp_path, "broken-dist", "tfplug_broken", "import no_such_module_here\n", entry="broken")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError) as caught:
        registry()
    text = str(caught.value)
    assert "entry point group testfleet" in text and "broken (broken-dist 1.0)" in text
    assert "broken = tfplug_broken" in text and "ModuleNotFoundError" in text
    assert "no_such_module_here" in text


@pytest.mark.parametrize(("source", "message"), [
    ("from testfleet.plugins import hookimpl\n@hookimpl\ndef testfleet_add_operators():\n    return {}\n",
     "unknown hook 'testfleet_add_operators'"),
    ("from testfleet.plugins import hookimpl\n@hookimpl\ndef testfleet_add_backends():\n    return 3\n",
     "returned a int"),
    ("from testfleet.plugins import hookimpl\n@hookimpl\ndef testfleet_add_trigger_metrics():\n"
     "    return {'q': 'sut.rss_mb'}\n", "expected a \\(metric, statistic\\) pair"),
    ("from testfleet.plugins import hookimpl\n@hookimpl\ndef testfleet_add_reporters():\n    1 / 0\n",
     "failed: ZeroDivisionError"),
])
def test_a_plugin_that_breaks_the_contract_is_named(tmp_path: Path, monkeypatch, fresh_registry,
                                                    source: str, message: str) -> None:
    make_dist(tmp_path, "odd-dist", "tfplug_odd", source)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError, match=message) as caught:
        found = registry()
        found.backends(), found.trigger_metrics(), found.reporters()
    assert "tfplug_odd" in str(caught.value)


def test_a_plugin_reporter_is_asked_for_by_name(example_site: Path, monkeypatch, fresh_registry) -> None:
    monkeypatch.syspath_prepend(str(example_site))
    settings = Settings(junitxml="j.xml", reports={"csv": "r.csv"})
    assert [(spec.name, flag, path) for spec, flag, path in report_targets(settings)] == [
        ("junit", "--junitxml", "j.xml"), ("csv", "--report csv", "r.csv")]
    with pytest.raises(PluginError, match="no plugin reporter named 'xlsx' .*expected csv"):
        report_targets(Settings(reports={"xlsx": "r.xlsx"}))


BACKEND_AND_GENERATOR = """
from pathlib import Path
from testfleet.plugins import GeneratorSpec, hookimpl


class Inline:
    name = "inline"

    def __init__(self, args, workers):
        self.args, self.workers = args, workers


def _inline(settings, pytest_args, workers, cwd, env):
    return Inline(pytest_args, workers)


def _count(requests, out, options):
    Path(out).write_text(str(len(requests)))
    yield f"counted {len(requests)} requests"


@hookimpl
def testfleet_add_backends():
    return {"inline": _inline}


@hookimpl
def testfleet_add_generators():
    return {"count": GeneratorSpec("count", _count)}
"""


def test_a_plugin_backend_and_generator_are_chosen_by_name(tmp_path: Path, monkeypatch, fresh_registry,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from testfleet.cli.app import main
    from testfleet.cli.run import make_backend

    make_dist(tmp_path / "site", "extra-dist", "tfplug_extra", BACKEND_AND_GENERATOR)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    backend = make_backend(Settings(backend="inline"), ["-q"], 3, tmp_path)
    assert (backend.name, backend.args, backend.workers) == ("inline", ["-q"], 3)
    with pytest.raises(ValueError, match="unknown backend 'nope'; expected local \\| ray \\| inline"):
        Settings(backend="nope")
    traffic = Path(__file__).resolve().parents[2] / "examples" / "inventory" / "traffic" / "requests.jsonl"
    code = main(["generate", "learn", str(traffic), "-o", str(tmp_path / "m.txt"), "--generator", "count"])
    assert code == 0 and "counted" in capsys.readouterr().out
    assert int((tmp_path / "m.txt").read_text()) > 0
    assert main(["generate", "learn", str(traffic), "-o", str(tmp_path / "n"), "--generator", "nope"]) == 2
    assert "statistical | llm | count" in capsys.readouterr().err


def test_plugin_report_paths_in_a_settings_file_are_relative_to_it(tmp_path: Path) -> None:
    from testfleet.settings import load_settings

    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "testfleet.toml").write_text('[reports]\ncsv = "out/r.csv"\n')
    settings, _source = load_settings([], {}, cwd=tmp_path / "proj")
    assert settings.reports == {"csv": str(tmp_path / "proj" / "out" / "r.csv")}


NOTIFIER = """
from pathlib import Path
from typing import Literal

from testfleet.plugins import NotifierSpec, hookimpl
from testfleet.reporting.notify.config import NotifyTarget


class FileTarget(NotifyTarget):
    kind: Literal["file"]
    path: str


def deliver(target, summary, env, tries):
    Path(target.path).write_text(summary.text)
    return {"bytes": len(summary.text)}


@hookimpl
def testfleet_add_notifiers():
    return {"file": NotifierSpec("file", deliver, target=FileTarget)}
"""


def test_a_plugin_notification_kind_is_configured_and_delivered(tmp_path: Path, monkeypatch,
                                                                fresh_registry) -> None:
    from types import SimpleNamespace

    from testfleet.reporting.notify.config import NotifyTableError, parse_notify
    from testfleet.reporting.notify.send import deliver_all

    make_dist(tmp_path / "site", "file-dist", "tfplug_notify", NOTIFIER)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    table = {"targets": [{"kind": "file", "path": str(tmp_path / "n.txt"), "when": "always"}]}
    settings = parse_notify(table)
    assert parse_notify(settings.to_table()) == settings  # what a run records reads back the same
    summary = SimpleNamespace(matches=lambda when: True, text="run r1: 2 failed")
    [result] = deliver_all(settings, summary, env={})  # type: ignore[arg-type]
    assert (result.ok, result.via, result.detail) == (True, "file", {"bytes": 16})
    assert (tmp_path / "n.txt").read_text() == "run r1: 2 failed"
    with pytest.raises(NotifyTableError, match="one of slack, webhook, email, jira, github, file"):
        parse_notify({"targets": [{"kind": "fax"}]})
