"""Which report files a run writes: every reporter the registry knows whose path is set.

A built-in reporter's path is its own setting (``junitxml``, ``json``, ``md``); a plugin's is
``reports[NAME]`` (``--report NAME=PATH``).
"""

from __future__ import annotations

from typing import Any

from testfleet.plugins.specs import PluginError, ReporterSpec

__all__ = ["check_reports", "report_targets"]


def _flag(setting: str) -> str:
    return "--" + ("json" if setting == "json_report" else setting.replace("_", "-"))


def report_targets(settings: Any) -> list[tuple[ReporterSpec, str, str]]:
    """``(reporter, flag, path)`` for each report the settings ask for, in registry order; an
    unknown name in ``reports`` is an error naming the reporters there are."""
    from testfleet.plugins.manager import registry

    reporters = registry().reporters()
    asked: dict[str, str] = dict(getattr(settings, "reports", None) or {})
    unknown = sorted(set(asked) - {name for name, spec in reporters.items() if spec.setting is None})
    if unknown:
        plugin_ones = [name for name, spec in reporters.items() if spec.setting is None]
        raise PluginError(f"no plugin reporter named {unknown[0]!r}", place="--report",
                          expected=" | ".join(plugin_ones) if plugin_ones else
                          "a reporter of an installed plugin (none is installed)")
    out = []
    for name, spec in reporters.items():
        if spec.setting is not None:
            path = getattr(settings, spec.setting, None)
            flag = _flag(spec.setting)
        else:
            path, flag = asked.get(name), f"--report {name}"
        if path:
            out.append((spec, flag, str(path)))
    return out


def check_reports(settings: Any) -> None:
    """Refuse, before any test runs, a report path that cannot be written (exit 4)."""
    from testfleet.atomic import check_output

    for spec, flag, path in report_targets(settings):
        check_output(path, flag, folder=spec.folder)
