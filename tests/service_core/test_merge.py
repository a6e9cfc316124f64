"""A submitted run's private store: a full copy of the server's going in, only that run coming
back out, and content-keyed rows (cases, variants) never twice."""

from __future__ import annotations

from pathlib import Path

import pytest
from execution.conftest import make_suite, run_testfleet

from testfleet.errors import StoreError
from testfleet.service.merge import merge_run, private_copy
from testfleet.store.db import Store

SUITE = {"tests/test_a.py": """
    import pytest


    @pytest.mark.parametrize("i", range(6))
    def test_n(i):
        assert i != 4
    """}


def _counts(store: Store) -> dict[str, int]:
    return {t: int(store.query(f'SELECT count(*) FROM "{t}"')[0][0])
            for t in ("runs", "results", "cases", "variants", "run_cases")}


def test_the_copy_has_the_history_and_the_merge_brings_back_only_the_new_run(tmp_path: Path) -> None:
    project = make_suite(tmp_path / "p", SUITE)
    main_path, private = tmp_path / "main.duckdb", tmp_path / "private.duckdb"
    assert run_testfleet(project, "tests", store=main_path).returncode == 1
    with Store.open(main_path) as main:
        private_copy(main, private)
        before = _counts(main)
    with Store.open(private, read_only=True) as copy:
        assert _counts(copy) == before  # the same history: failed-first order, durations, variants
    second = run_testfleet(project, "tests", store=private)
    assert second.returncode == 1
    new_run = second.run().run_id
    with Store.open(main_path) as main:
        merge_run(main, private, new_run)
        after = _counts(main)
        assert main.get_run(new_run).exit_code == 1
        merged = sorted((r.nodeid, r.outcome) for r in main.results(new_run))
    with Store.open(private, read_only=True) as copy:
        assert merged == sorted((r.nodeid, r.outcome) for r in copy.results(new_run))
    assert after["runs"] == before["runs"] + 1
    assert after["results"] == before["results"] + len(merged)
    assert after["cases"] == before["cases"] and after["variants"] == before["variants"]  # the same tests
    with Store.open(main_path) as main, pytest.raises(StoreError):
        merge_run(main, private, new_run)  # a run is merged once: its id is taken
    with Store.open(main_path, read_only=True) as main:
        assert _counts(main) == after  # and a refused merge leaves nothing behind


def test_a_missing_private_store_is_a_store_error(tmp_path: Path) -> None:
    with Store.open(tmp_path / "main.duckdb") as main, pytest.raises(StoreError, match="private store is missing"):
        merge_run(main, tmp_path / "gone.duckdb", "r")
