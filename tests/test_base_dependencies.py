"""Every third-party module testfleet imports is a base dependency of the package (so a plain
``pip install testfleet`` runs every command and the bundled example), except the few that only
an extra's feature imports, and those only inside the function that needs them.

.ci/run checks the same for real: it installs the package with no extras into a fresh virtual
environment, imports every module and runs the example there."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "testfleet"

# module -> why it may be missing from a plain install: imported only where that feature runs
OPTIONAL = {
    "ray": "the Ray backend (extra: ray)",
    "torch": "the llm generator (extra: llm)",
    "transformers": "the llm generator (extra: llm)",
    "peft": "the llm generator (extra: llm)",
    "tokenizers": "the llm generator (extra: llm, via transformers)",
    "choreographer": "kaleido's browser finder (a dependency of kaleido)",
    "uvloop": "a faster event loop for scenario batches, used when installed",
}
# modules whose whole purpose is an optional feature: they may import it at the top
OPTIONAL_MODULES = {SRC / "execution" / "backends" / "ray.py"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _base_distributions() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {_norm(Requirement(text).name) for text in project["dependencies"]}


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(top-level module name, imported at module level) of every absolute import in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top_level = {id(node) for node in tree.body}
    for node in tree.body:  # `if TYPE_CHECKING:` / try blocks at the top count as module level
        for child in ast.walk(node):
            top_level.add(id(child))
    in_function: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            in_function.update(id(child) for child in ast.walk(node))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            out.append((name.split(".")[0], id(node) not in in_function))
    return out


def test_every_imported_third_party_module_is_a_base_dependency() -> None:
    base = _base_distributions()
    providers = packages_distributions()
    problems = []
    for path in sorted(SRC.rglob("*.py")):
        for module, at_top in _imports(path):
            if module in sys.stdlib_module_names or module in ("testfleet", "__future__"):
                continue
            where = path.relative_to(ROOT)
            if module in OPTIONAL:
                if at_top and path not in OPTIONAL_MODULES:
                    problems.append(f"{where}: imports {module} ({OPTIONAL[module]}) at module level")
                continue
            dists = {_norm(d) for d in providers.get(module, [module])}
            if not dists & base:
                problems.append(f"{where}: imports {module} (distribution {', '.join(sorted(dists))}), "
                                "which is not in [project] dependencies")
    assert not problems, "\n".join(problems)
