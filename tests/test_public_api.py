"""The public API a user imports: ``testfleet.<name>`` is the real class or function, for the
interpreter (lazily, without numpy at ``import testfleet``) and for a type checker (``py.typed``
and ``TYPE_CHECKING`` imports), so a user's ``mypy --strict`` on a test passes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import testfleet
import testfleet.explorable
import testfleet.model
import testfleet.space

PACKAGE = Path(testfleet.__file__).resolve().parent
ROOT = Path(__file__).resolve().parents[1]

USER_TEST = '''
    import testfleet
    from testfleet import Choice, Int, metric


    @testfleet.explore(size=Int(1, 10, step=1), mode=Choice(["fast", "safe"]),
                       constraints=["size < 8 or mode == 'safe'"])
    def test_upload(size: int, mode: str) -> None:
        metric("upload.kib", size * 2.5)
        testfleet.metric("mode.length", len(mode))
        assert size >= 1


    def widest() -> Int:
        return testfleet.Int(1, 1000)
'''

# A misuse a checker can only see if testfleet's names are typed (were they Any, it would pass).
MISUSE = '''
    import testfleet

    count: int = testfleet.Int(1, 3)
'''


def test_names_are_listed_and_resolve_to_their_definitions() -> None:
    homes = {**{n: testfleet.space for n in ("Bool", "Choice", "Duration", "Float", "Int",
                                              "ListOf", "Object", "Optional", "Permutation",
                                              "Size", "Space", "String", "Union")},
             **{n: testfleet.model for n in ("Case", "Outcome", "Result", "Run", "Variant")},
             "explore": testfleet.explorable}
    assert set(testfleet.__all__) == {*homes, "metric", "__version__"}
    assert set(testfleet.__all__) <= set(dir(testfleet))
    for name, module in homes.items():
        assert getattr(testfleet, name) is getattr(module, name)


def test_import_stays_light() -> None:
    # workers and `testfleet --help` import the package; numpy and pydantic wait for first use
    code = ("import sys, testfleet; heavy = {'numpy', 'pydantic'} & set(sys.modules); "
            "assert not heavy, heavy; testfleet.Int; assert 'numpy' in sys.modules")
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent)}
    subprocess.run([sys.executable, "-c", code], env=env, check=True)


def test_package_ships_its_type_marker() -> None:
    assert (PACKAGE / "py.typed").is_file()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "py.typed" in pyproject["tool"]["setuptools"]["package-data"]["testfleet"]


def test_users_mypy_strict_passes_on_a_test_using_the_api(tmp_path: Path) -> None:
    (tmp_path / "test_user.py").write_text(textwrap.dedent(USER_TEST))
    (tmp_path / "misuse.py").write_text(textwrap.dedent(MISUSE))
    # testfleet found on the path as an installed package is checked through its py.typed
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent)}
    env.pop("MYPYPATH", None)
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental",
         "--cache-dir", str(tmp_path / ".mypy_cache"), "test_user.py", "misuse.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    assert not [e for e in errors if e.startswith("test_user.py")], done.stdout
    assert len(errors) == 1 and errors[0].startswith("misuse.py:4:"), done.stdout
    assert 'type "Int"' in errors[0], done.stdout
