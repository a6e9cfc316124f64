"""``testfleet plugins``: the installed plugins and what each provides, hook by hook.

testfleet's own providers are listed too (they come through the same hooks, as ``built-in``).
``--json`` prints one object: ``{"plugins": [{name, builtin, distribution, version, value,
provides: {hook: [names]}}]}``. A plugin that cannot be loaded, or a name given twice, is one
message on stderr and exit 4 (the code ``testfleet run`` gives it too).
"""

from __future__ import annotations

import json
import sys

from rich.markup import escape
from rich.table import Table

from testfleet.plugins.manager import HOOKS
from testfleet.plugins.specs import PluginError
from testfleet.reporting.consoles import make_console

__all__ = ["show_plugins"]

BROKEN = 4

#: hook -> the short word a table shows
_SHORT = {hook: word + "s" for hook, word in HOOKS.items()} | {"testfleet_run_listener": "run listener"}


def show_plugins(as_json: bool = False, builtins: bool = True) -> int:
    from testfleet.plugins import registry

    try:
        found = registry()
        infos = found.plugins()
        provided = found.provided()
    except PluginError as exc:
        sys.stderr.write(f"ERROR: {exc}\n")
        return BROKEN
    shown = [info for info in infos if builtins or not info.builtin]
    if as_json:
        rows = [{"name": info.name, "builtin": info.builtin, "distribution": info.distribution,
                 "version": info.version, "value": info.value, "provides": provided[info.name]}
                for info in shown]
        sys.stdout.write(json.dumps({"plugins": rows}, indent=2) + "\n")
        return 0
    table = Table("plugin", "distribution", "provides", box=None, header_style="bold")
    for info in shown:
        origin = f"{info.distribution or '-'} {info.version or ''}".strip()
        if info.builtin:
            origin = f"built-in ({origin})"
        what = "; ".join(f"{_SHORT[hook]}: {', '.join(names)}" if names else _SHORT[hook]
                         for hook, names in provided[info.name].items()) or "-"
        table.add_row(escape(info.name), escape(origin), escape(what))
    console = make_console(soft_wrap=True)
    console.print(table)
    plugins = sum(not info.builtin for info in infos)
    console.print(f"{plugins} plugin{'s' if plugins != 1 else ''} installed (entry-point group 'testfleet')")
    return 0
