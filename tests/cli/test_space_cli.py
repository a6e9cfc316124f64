"""``testfleet space fuzz|coverage|show`` as a user runs them: real processes, real files, a real
DuckDB store. Variant files come back in the input's own format, the same seed writes the same
files, coverage reproduces the NIST CCM example, and bad input changes nothing."""

from __future__ import annotations

import filecmp
import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
from execution.conftest import run_cli

from testfleet.configs.formats import coerce_scalars, load
from testfleet.configs.paths import flatten
from testfleet.model import Case, Outcome, Result, Run, Variant
from testfleet.store.db import Store

EXAMPLES = {
    "app.yaml": "server:\n  port: 8080\n  threads: 8\n  debug: false\ncache:\n  mode: lru\n"
                "  size: 64MB\n  ttl: 30s\n",
    "app.json": json.dumps({"server": {"port": 8080, "threads": 8, "debug": False},
                            "cache": {"mode": "lru", "size": "64MB", "ttl": "30s"}}),
    "app.toml": "[server]\nport = 8080\nthreads = 8\ndebug = false\n\n[cache]\nmode = \"lru\"\n"
                "size = \"64MB\"\nttl = \"30s\"\n",
    "app.ini": "[server]\nport = 8080\nthreads = 8\ndebug = false\n\n[cache]\nmode = lru\n"
               "size = 64MB\nttl = 30s\n",
    "app.xml": "<app><server><port>8080</port><threads>8</threads><debug>false</debug></server>"
               "<cache><mode>lru</mode><size>64MB</size><ttl>30s</ttl></cache></app>",
    "app.properties": "server.port=8080\nserver.threads=8\nserver.debug=false\ncache.mode=lru\n"
                      "cache.size=64MB\ncache.ttl=30s\n",
}


def _documents(out: Path) -> dict[str, object]:
    docs = {}
    for file in sorted(out.iterdir()):
        if file.name != "manifest.json":
            doc = load(file)
            docs[file.name] = coerce_scalars(doc.data) if doc.format in ("ini", "xml",
                                                                          "properties") else doc.data
    return docs


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_fuzz_writes_variants_in_the_configs_own_format(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_text(EXAMPLES[name])
    ran = run_cli(tmp_path, "space", "fuzz", name, "--strategy", "mixed", "--count", "25",
                  "--seed", "7", "--out", "out")
    assert ran.returncode == 0, ran.log
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["strategy"] == "mixed" and manifest["seed"] == 7
    assert len(manifest["variants"]) == 25
    docs = _documents(tmp_path / "out")
    assert len(docs) == 25
    suffix = name.split(".")[1]
    for entry in manifest["variants"]:
        assert entry["file"].endswith("." + suffix)
        doc = docs[entry["file"]]
        flat = doc if name == "app.properties" else flatten(doc)
        prefix = "app." if name == "app.xml" else ""
        flat = {k.removeprefix(prefix): v for k, v in flat.items()}
        # the file holds what the manifest says (sizes and durations as the example wrote them)
        assert flat["server.threads"] == entry["params"][prefix + "server.threads"]
        assert flat["server.debug"] == entry["params"][prefix + "server.debug"]
        assert isinstance(flat["cache.size"], str) and flat["cache.size"][-1] == "B"
    origins = [v["origin"] for v in manifest["variants"]]
    assert origins[0] == "baseline" and any(o.startswith("edge:") for o in origins)


def test_same_seed_writes_identical_files_and_another_seed_does_not(tmp_path: Path) -> None:
    (tmp_path / "app.yaml").write_text(EXAMPLES["app.yaml"])
    for out, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        ran = run_cli(tmp_path, "space", "fuzz", "app.yaml", "-s", "random", "-n", "20",
                      "--seed", seed, "-o", out)
        assert ran.returncode == 0, ran.log
    same = filecmp.dircmp(tmp_path / "a", tmp_path / "b")
    assert not same.left_only and not same.right_only and not same.diff_files
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) != \
        sorted(p.name for p in (tmp_path / "c").iterdir())


def test_overlay_constraints_hold_in_every_written_variant(tmp_path: Path) -> None:
    (tmp_path / "app.yaml").write_text(EXAMPLES["app.yaml"])
    (tmp_path / "overlay.yaml").write_text(
        "parameters:\n  cache.mode: ['off', lru, lfu]\n  server.threads: {min: 1, max: 64}\n"
        "  cache.size: {min: 0B}\nconstraints:\n  - \"cache.mode == 'off' -> cache.size == 0\"\n"
        "  - server.threads <= 32 or server.debug == false\n")
    ran = run_cli(tmp_path, "space", "fuzz", "app.yaml", "--overlay", "overlay.yaml", "-s",
                  "pairwise", "-o", "out", "--format", "json")
    assert ran.returncode == 0, ran.log
    docs = _documents(tmp_path / "out")
    assert docs and all(name.endswith(".json") for name in docs)
    modes = set()
    for doc in docs.values():
        modes.add(doc["cache"]["mode"])
        if doc["cache"]["mode"] == "off":
            assert doc["cache"]["size"] == "0B"
        assert doc["server"]["threads"] <= 32 or doc["server"]["debug"] is False
    assert modes == {"off", "lru", "lfu"}


def test_json_schema_variants_validate(tmp_path: Path) -> None:
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
              "required": ["port", "mode"],
              "properties": {"port": {"type": "integer", "minimum": 1, "maximum": 65535},
                             "mode": {"enum": ["a", "b"]},
                             "name": {"type": "string", "maxLength": 6}}}
    (tmp_path / "schema.json").write_text(json.dumps(schema))
    ran = run_cli(tmp_path, "space", "fuzz", "schema.json", "-s", "edge", "-o", "out", "-f", "yaml")
    assert ran.returncode == 0, ran.log
    docs = _documents(tmp_path / "out")
    assert docs
    for doc in docs.values():
        jsonschema.validate(doc, schema)
    assert {doc["port"] for doc in docs.values()} >= {1, 65535}


def test_conflicting_constraints_exit_2_name_them_and_write_nothing(tmp_path: Path) -> None:
    (tmp_path / "space.yaml").write_text(
        "dimensions:\n  a: {type: int, min: 0, max: 10}\n  b: [x, y]\n"
        "constraints:\n  - a > 5\n  - b == 'x'\n  - a < 3\n")
    ran = run_cli(tmp_path, "space", "fuzz", "space.yaml", "-s", "random", "-n", "5", "-o", "out")
    assert ran.returncode == 2, ran.log
    assert "a > 5" in ran.stderr and "a < 3" in ran.stderr and "b == 'x'" not in ran.stderr
    assert "Traceback" not in ran.output
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


@pytest.mark.parametrize(("files", "args", "message"), [
    ({"app.yaml": "server:\n  port: [8080\n"}, ["app.yaml"], "app.yaml"),
    ({"app.yaml": EXAMPLES["app.yaml"], "o.yaml": "parameters:\n  server.thread: {max: 9}\n"},
     ["app.yaml", "--overlay", "o.yaml"], "did you mean 'server.threads'"),
    ({"space.yaml": "dimensions:\n  a: {type: int, min: 5, max: 1}\n"}, ["space.yaml"],
     "dimensions.a"),
    ({"space.yaml": "dimensions:\n  a: {type: int, min: 1, max: 5}\nconstraints: ['a <']\n"},
     ["space.yaml"], "constraints[0]"),
])
def test_bad_input_is_one_message_and_exit_2(tmp_path: Path, files, args, message) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    ran = run_cli(tmp_path, "space", "fuzz", *args, "-s", "edge", "-o", "out")
    assert ran.returncode == 2, ran.log
    assert message in ran.stderr
    assert "Traceback" not in ran.output
    assert not (tmp_path / "out").exists()


def test_an_unrelated_output_directory_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "app.yaml").write_text(EXAMPLES["app.yaml"])
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "precious.txt").write_text("keep me")
    ran = run_cli(tmp_path, "space", "fuzz", "app.yaml", "-s", "edge", "-o", "out")
    assert ran.returncode == 2 and "not an earlier fuzz output" in ran.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["precious.txt"]


def _space_file(tmp_path: Path, k: int = 4) -> Path:
    dims = "".join(f"  {chr(97 + i)}: [0, 1]\n" for i in range(k))
    path = tmp_path / "space.yaml"
    path.write_text("dimensions:\n" + dims)
    return path


def test_coverage_reproduces_the_nist_ccm_example(tmp_path: Path) -> None:
    _space_file(tmp_path)
    runs = tmp_path / "ran"
    runs.mkdir()
    for i, row in enumerate(["0000", "0110", "1001", "0111"]):
        (runs / f"t{i}.json").write_text(json.dumps(dict(zip("abcd", map(int, row), strict=True))))
    ran = run_cli(tmp_path, "space", "coverage", "space.yaml", "--variants", "ran", "--json",
                  "cov.json", "--html", "cov.html")
    assert ran.returncode == 0, ran.log
    data = json.loads((tmp_path / "cov.json").read_text())
    assert (data["covered_tuples"], data["valid_tuples"]) == (19, 24)
    assert data["full_combinations"] == pytest.approx(2 / 6)
    assert "79.2%" in ran.stdout and "33.3%" in ran.stdout
    html = (tmp_path / "cov.html").read_text()
    assert "Pairwise coverage" in html and '"a"' in html
    short = run_cli(tmp_path, "space", "coverage", "space.yaml", "--variants", "ran", "--min", "0.9")
    assert short.returncode == 1


def test_extend_then_coverage_reaches_every_pair(tmp_path: Path) -> None:
    _space_file(tmp_path, 6)
    first = run_cli(tmp_path, "space", "fuzz", "space.yaml", "-s", "random", "-n", "3",
                    "--seed", "1", "-o", "first")
    assert first.returncode == 0, first.log
    more = run_cli(tmp_path, "space", "fuzz", "space.yaml", "-s", "pairwise", "--extend", "first",
                   "-o", "more")
    assert more.returncode == 0, more.log
    both = tmp_path / "both"
    both.mkdir()
    for folder in ("first", "more"):
        for file in (tmp_path / folder).glob("*.json"):
            if file.name != "manifest.json":
                (both / f"{folder}-{file.name}").write_text(file.read_text())
    ran = run_cli(tmp_path, "space", "coverage", "space.yaml", "--variants", "both", "--json",
                  "cov.json")
    assert ran.returncode == 0, ran.log
    assert json.loads((tmp_path / "cov.json").read_text())["simple"] == 1.0
    added = json.loads((tmp_path / "more" / "manifest.json").read_text())["variants"]
    assert 0 < len(added) < 10


def test_coverage_of_a_stored_run_overlays_failures(tmp_path: Path) -> None:
    _space_file(tmp_path, 3)
    store_path = tmp_path / "s.duckdb"
    case = Case.from_nodeid("tests/test_x.py::test_x")
    variants = [Variant.of(case, {"a": a, "b": b, "c": 0}, origin="pairwise")
                for a in (0, 1) for b in (0, 1)]
    now = datetime.now(UTC)
    with Store.open(store_path) as db:
        run = Run(run_id="r1", started_at=now, workers=1, seed=0, settings={})
        db.begin_run(run)
        db.add_cases([case], run_id="r1")
        db.add_variants(variants)
        db.append_results([
            Result(run_id="r1", variant_id=v.variant_id, case_id=case.case_id,
                   nodeid=case.nodeid, worker="w0",
                   outcome=Outcome.failed if v.params["a"] == 1 and v.params["b"] == 1
                   else Outcome.passed, duration=0.1, started_at=now, finished_at=now)
            for v in variants])
        db.finish_run(run.model_copy(update={"finished_at": now, "exit_code": 1,
                                             "counts": {"passed": 3, "failed": 1}}))
    ran = run_cli(tmp_path, "space", "coverage", "space.yaml", "--run", "last", "--store",
                  store_path, "--json", "cov.json", "--html", "cov.html")
    assert ran.returncode == 0, ran.log
    data = json.loads((tmp_path / "cov.json").read_text())
    assert data["rows"] == 4 and data["failed_rows"] == 1
    assert "1 failed" in (tmp_path / "cov.html").read_text()


def test_show_describes_a_huge_space_without_enumerating_it(tmp_path: Path) -> None:
    dims = "".join(f"  d{i}: {{type: int, min: 0, max: 9}}\n" for i in range(120))
    (tmp_path / "space.yaml").write_text("dimensions:\n" + dims)
    ran = run_cli(tmp_path, "space", "show", "space.yaml")
    assert ran.returncode == 0, ran.log
    assert "points: about 10^120.0" in ran.stdout


def test_the_bundled_example_reaches_full_pairwise_coverage(tmp_path: Path) -> None:
    config = Path(__file__).resolve().parents[2] / "examples" / "inventory" / "config"
    args = (config / "service.yaml", "--overlay", config / "overlay.yaml")
    fuzzed = run_cli(tmp_path, "space", "fuzz", *args, "-s", "pairwise", "-o", "pairs")
    assert fuzzed.returncode == 0, fuzzed.log
    measured = run_cli(tmp_path, "space", "coverage", *args, "--variants", "pairs", "--min", "1")
    assert measured.returncode == 0, measured.log
    assert "simple 2-way coverage: 100.0%" in measured.stdout
    for doc in _documents(tmp_path / "pairs").values():
        if doc["server"]["debug"]:
            assert doc["server"]["threads"] <= 4
    schema = json.loads((config / "service.schema.json").read_text())
    schemed = run_cli(tmp_path, "space", "fuzz", config / "service.schema.json", "-s", "mixed",
                      "-n", "40", "-o", "schema")
    assert schemed.returncode == 0, schemed.log
    for doc in _documents(tmp_path / "schema").values():
        jsonschema.validate(doc, schema)
