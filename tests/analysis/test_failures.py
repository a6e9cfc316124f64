"""Failure fingerprints and clusters, on tracebacks shaped like (and made by) real pytest runs."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testfleet.analysis.failures import (
    EVERYWHERE,
    ONE_WORKER,
    TOO_FEW,
    Cluster,
    cluster_failures,
    environment,
    fingerprint,
    normalise_message,
)
from testfleet.analysis.stratified import NOT_TESTABLE
from testfleet.execution.resilience import lost_test_payload

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SEP = "_ " * 40


def pytest_longrepr(exc: str, message: str, root: str = "", frames: tuple[str, ...] = ("parse", "check"),
                    module: str = "pkg/helpers.py") -> str:
    """pytest's long layout: the test, then helper entries (short), then the raising one (long)."""
    inner = frames[-1]
    text = f"def test_it():\n>       {frames[0]}(1234)\n\ntests/test_it.py:3: \n{SEP}\n"
    for func in frames[:-1]:
        text += f"{root}{module}:2: in {func}\n    return {inner}(x)\n           ^^^^^^^^\n{SEP}\n"
    text += f"\nx = 1234\n\n    def {inner}(x):\n>       raise {exc}(msg)\nE       {exc}: {message}\n\n"
    return text + f"{root}{module}:9: {exc.rsplit('.', 1)[-1]}"


def row(run: str, nodeid: str, worker: str, outcome: str = "passed", message: str = "",
        longrepr: str = "", minutes: int = 0) -> dict:
    return {"run_id": run, "nodeid": nodeid, "worker": worker, "outcome": outcome, "message": message,
            "longrepr": longrepr, "finished_at": T0 + timedelta(minutes=minutes)}


def failing(run: str, nodeid: str, worker: str, message: str, exc: str = "ValueError", minutes: int = 0,
            **kw: object) -> dict:
    return row(run, nodeid, worker, "failed", f"{exc}: {message}", pytest_longrepr(exc, message, **kw), minutes)


# -- fingerprints ---------------------------------------------------------------------------------

def test_fingerprint_reads_type_normalised_message_and_user_frames() -> None:
    msg = "bad id 1234 at /tmp/foo/1234.txt obj at 0x7fae59a750d0"
    fp = fingerprint("failed", f"ValueError: {msg}", pytest_longrepr("ValueError", msg))
    assert fp.exception == "ValueError"
    assert fp.message == "bad id <n> at <path> obj at <addr>"
    assert fp.frames == ("pkg/helpers.py:check", "pkg/helpers.py:parse", "tests/test_it.py:test_it")
    assert len(fp.key) == 16


def test_stdlib_and_site_packages_frames_are_not_user_frames() -> None:
    longrepr = (
        'def test_z():\n>       json.loads("{bad")\n\ntests/test_x.py:5: \n' + SEP + "\n"
        "/root/.pyenv/versions/3.11.7/lib/python3.11/json/__init__.py:346: in loads\n    return x\n" + SEP + "\n"
        "/venv/lib/python3.11/site-packages/_pytest/python.py:12: in call\n    f()\n" + SEP + "\n"
        "    def raw_decode(self, s, idx=0):\n>       obj, end = self.scan_once(s, idx)\n"
        "E       json.decoder.JSONDecodeError: Expecting value: line 1 column 2 (char 1)\n\n"
        "/root/.pyenv/versions/3.11.7/lib/python3.11/json/decoder.py:353: JSONDecodeError")
    fp = fingerprint("failed", "json.decoder.JSONDecodeError: Expecting value: line 1 column 2 (char 1)", longrepr)
    assert fp.exception == "json.decoder.JSONDecodeError"
    assert fp.frames == ("tests/test_x.py:test_z",)
    assert fp.message == "Expecting value: line <n> column <n> (char <n>)"


def test_bare_assert_takes_its_type_from_the_location_line() -> None:
    longrepr = ("def test_a():\n        a = 3\n>       assert a == 4\nE       assert 3 == 4\n\n"
                "tests/t.py:13: AssertionError")
    fp = fingerprint("failed", "assert 3 == 4", longrepr)
    assert (fp.exception, fp.message, fp.frames) == ("AssertionError", "assert <n> == <n>", ("tests/t.py:test_a",))


def test_short_layout_gives_the_same_fingerprint_as_the_long_one() -> None:
    msg = "bad id 77 at /tmp/x"
    short = ("tests/test_it.py:3: in test_it\n    parse(1234)\npkg/helpers.py:2: in parse\n    return check(x)\n"
             "pkg/helpers.py:9: in check\n    raise ValueError(msg)\nE   ValueError: bad id 77 at /tmp/x")
    assert fingerprint("failed", f"ValueError: {msg}", short) == \
        fingerprint("failed", f"ValueError: {msg}", pytest_longrepr("ValueError", msg))


def test_native_traceback_uses_the_last_exception_of_a_chain() -> None:
    longrepr = textwrap.dedent('''\
        Traceback (most recent call last):
          File "/home/a/proj/pkg/mod.py", line 4, in g
          File "/home/a/proj/pkg/mod.py", line 2, in f
        KeyError: 'x'

        The above exception was the direct cause of the following exception:

        Traceback (most recent call last):
          File "/home/a/proj/tests/test_m.py", line 6, in test_m
          File "/home/a/proj/pkg/mod.py", line 5, in g
        ValueError: wrapped 17''')
    fp = fingerprint("failed", "", longrepr)
    assert (fp.exception, fp.message, fp.frames) == ("ValueError", "wrapped <n>",
                                                     ("pkg/mod.py:g", "tests/test_m.py:test_m"))


def test_crashes_fingerprint_on_exit_and_dump_frames_not_worker_or_test() -> None:
    dump = textwrap.dedent('''\
        Fatal Python error: Segmentation fault

        Thread 0x00007fb04a5c46c0 (most recent call first):
          File "/srv/w1/proj/pkg/poller.py", line 7 in poll

        Current thread 0x00007fb04b437b80 (most recent call first):
          File "/usr/lib/python3.11/ctypes/__init__.py", line 519 in string_at
          File "/srv/w1/proj/pkg/native.py", line 4 in inner
          File "/srv/w1/proj/pkg/native.py", line 6 in outer
          File "/srv/w1/proj/tests/test_n.py", line 8 in test_n
          File "/srv/w1/proj/tests/test_n.py", line 1 in <module>''')
    prints = set()
    for worker, nodeid in (("gw1", "tests/test_n.py::test_n[1]"), ("gw7", "tests/test_n.py::test_n[2]")):
        payload = lost_test_payload(timed_out=False, nodeid=nodeid, worker_id=worker, code=-11,
                                    timeout=None, dump=dump.replace("w1", worker), ran_for=1.0)
        prints.add(fingerprint(payload["outcome"], payload["message"], payload["longrepr"]))
    (fp,) = prints
    assert fp.exception == "crashed" and fp.message == "killed by signal 11 (SIGSEGV)"
    assert fp.frames == ("pkg/native.py:inner", "pkg/native.py:outer", "tests/test_n.py:test_n")
    abort = lost_test_payload(timed_out=False, nodeid="t", worker_id="gw1", code=-6, timeout=None, dump=dump, ran_for=1)
    assert fingerprint("crashed", abort["message"], abort["longrepr"]).key != fp.key
    timeout = lost_test_payload(timed_out=True, nodeid="tests/x.py::t", worker_id="gw1", code=-6, timeout=5,
                                dump=dump, ran_for=5)
    tfp = fingerprint(timeout["outcome"], timeout["message"], timeout["longrepr"])
    assert (tfp.exception, tfp.message, tfp.frames) == ("timeout", "ran longer than <n>s", fp.frames)


@pytest.mark.parametrize(("text", "expected"), [
    ("bad id 1234 at /tmp/foo/1234.txt", "bad id <n> at <path>"),
    ("<Obj object at 0x7f3a2b1c0d90>", "<Obj object at <addr>>"),
    ("user 123e4567-e89b-12d3-a456-426614174000 missing", "user <id> missing"),
    ("commit 9fceb02d0ae598e95dc970b74767f19372d61af8 not found", "commit <id> not found"),
    ("refused: localhost:54321", "refused: localhost:<n>"),
    ("at 2024-05-01T12:00:00+00:00 and 12:30:01.5", "at <time> and <time>"),
    ("No such file: 'C:\\Users\\me\\x.txt'", "No such file: '<path>'"),
    ("x = -1.5e-07, y=3", "x = <n>, y=<n>"),
    ("KeyError 'alice'", "KeyError 'alice'"),
    ("got '" + "a" * 60 + "'", "got '" + "a" * 60 + "'"),
    ("got '" + "a" * 2000 + "'", "got '" + "a" * 60 + "…'"),
    ("HTTP 503 Service Unavailable after 1234 ms", "HTTP 503 Service Unavailable after <n> ms"),
    ("status_code=500 on port 8080", "status_code=500 on port <n>"),
    ("first line\nsecond line 1", "first line"),
])
def test_normalise_message(text: str, expected: str) -> None:
    assert normalise_message(text) == expected


numbers = st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False)).map(repr)
segments = st.from_regex(r"[A-Za-z0-9_.-]{1,10}", fullmatch=True)
paths = st.lists(segments, min_size=1, max_size=5).map(lambda parts: "/" + "/".join(parts))
hex_ids = st.text("0123456789abcdef", min_size=6, max_size=40).filter(
    lambda s: any(c.isdigit() for c in s) and any(c.isalpha() for c in s)) | st.uuids().map(str)
addresses = st.integers(0x1000, 2**48).map(hex)
roots = st.lists(segments, min_size=0, max_size=4).map(lambda parts: "/" + "".join(p + "/" for p in parts))


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])  # slow on a loaded machine
@given(a=st.tuples(numbers, paths, hex_ids, addresses, numbers, roots),
       b=st.tuples(numbers, paths, hex_ids, addresses, numbers, roots))
def test_fingerprint_ignores_numbers_paths_ids_and_addresses(a: tuple, b: tuple) -> None:
    def make(values: tuple) -> object:
        number, path, ident, addr, port, root = values
        message = f"cannot load {path} for record {ident} after {number} tries (obj at {addr}, port {port})"
        return fingerprint("failed", f"OSError: {message}", pytest_longrepr("OSError", message, root=root))
    first, second = make(a), make(b)
    assert first == second
    assert "<path>" in first.message and "<id>" in first.message


# -- a real pytest run --------------------------------------------------------------------------

def test_real_pytest_failures_cluster_by_cause(tmp_path: Path) -> None:
    (tmp_path / "helper_mod.py").write_text(textwrap.dedent('''\
        def load(key, where):
            return check(key, where)
        def check(key, where):
            raise LookupError(f"no record {key} in {where} (obj {hex(id(where))})")
        def other(key):
            raise TypeError(f"wrong type for {key}")
    '''))
    (tmp_path / "test_real.py").write_text(textwrap.dedent('''\
        import uuid, pytest, helper_mod
        @pytest.mark.parametrize("n", range(3))
        def test_load(n, tmp_path):
            helper_mod.load(uuid.uuid4().hex, str(tmp_path / f"db{n}.sqlite"))
        def test_other():
            helper_mod.other(uuid.uuid4().hex)
        def test_direct():
            raise LookupError(f"no record {uuid.uuid4().hex} in /tmp/x (obj 0x7f00aa)")
    '''))
    (tmp_path / "conftest.py").write_text(textwrap.dedent('''\
        import json, pytest
        @pytest.hookimpl(hookwrapper=True)
        def pytest_runtest_makereport(item, call):
            rep = (yield).get_result()
            if rep.failed:
                with open("reports.jsonl", "a") as f:
                    f.write(json.dumps({"nodeid": rep.nodeid, "message": rep.longrepr.reprcrash.message,
                                        "longrepr": rep.longreprtext}) + "\\n")
    '''))
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_real.py"],
                   cwd=tmp_path, capture_output=True, check=False)
    reports = [json.loads(line) for line in (tmp_path / "reports.jsonl").read_text().splitlines()]
    assert len(reports) == 5
    rows = [row("r1", r["nodeid"], "gw0", "failed", r["message"], r["longrepr"]) for r in reports]
    clusters = cluster_failures(rows)
    assert [c.count for c in clusters] == [3, 1, 1]
    load, direct = clusters[0], next(c for c in clusters if c.tests == ["test_real.py::test_direct"])
    assert load.count == 3 and load.exception == "LookupError"
    assert load.frames == ("helper_mod.py:check", "helper_mod.py:load", "test_real.py:test_load")
    assert load.message == "no record <id> in <path> (obj <addr>)"
    assert direct.exception == "LookupError" and direct.message == load.message
    assert direct.frames == ("test_real.py:test_direct",)  # same error, raised elsewhere


# -- clusters -----------------------------------------------------------------------------------

def test_same_error_with_different_details_is_one_cluster() -> None:
    rows = [failing(f"r{i}", f"tests/test_it.py::test_it[{i}]", f"gw{i % 3}",
                    f"no record {uuid.uuid4()} in /tmp/pytest-{i}/db{i}.sqlite (obj {hex(0x7f0000 + i * 4096)})",
                    root=f"/home/ci/build-{i}/", minutes=i)
            for i in range(6)]
    (cluster,) = cluster_failures(rows)
    assert cluster.count == 6 and len(cluster.tests) == 6 and cluster.runs == {f"r{i}" for i in range(6)}
    assert cluster.first_seen == T0 and cluster.last_seen == T0 + timedelta(minutes=5)
    assert cluster.workers == {"gw0": 2, "gw1": 2, "gw2": 2}
    assert "/tmp/pytest-5/db5.sqlite" in cluster.example  # the latest raw message


def test_different_types_or_frames_are_different_clusters() -> None:
    rows = [failing("r1", "t::a", "gw0", "boom 1"), failing("r1", "t::b", "gw0", "boom 2"),
            failing("r1", "t::c", "gw0", "boom 3", exc="KeyError"),
            failing("r1", "t::d", "gw0", "boom 4", frames=("parse", "validate"))]
    clusters = cluster_failures(rows)
    assert [c.count for c in clusters] == [2, 1, 1]
    assert len({c.key for c in clusters}) == 3
    assert {c.exception for c in clusters} == {"ValueError", "KeyError"}


def test_failure_only_on_one_worker_is_environment_specific() -> None:
    rows, minute = [], 0
    for run in range(3):
        for i in range(6):
            worker = f"gw{(i + run) % 3}"
            minute += 1
            if worker == "gw2":
                rows.append(failing(f"r{run}", f"t::test_{i}", worker, f"No space left on device: '/tmp/r{run}/{i}'",
                                    exc="OSError", minutes=minute))
            else:
                rows.append(row(f"r{run}", f"t::test_{i}", worker, minutes=minute))
    (cluster,) = cluster_failures(rows)
    assert cluster.environment == "only on gw2" and cluster.environment_specific
    assert "within the 6 variant(s) that ran on more than one worker" in cluster.reason
    assert "gw0 0/6, gw1 0/6, gw2 6/6" in cluster.reason
    assert cluster.to_dict()["environment"] == "only on gw2"


def test_failure_spread_over_all_workers_is_everywhere() -> None:
    rows = [failing(f"r{run}", f"t::test_{i}", f"gw{(i + run) % 3}", "bad 1") if (i + run) % 2 == 0
            else row(f"r{run}", f"t::test_{i}", f"gw{(i + run) % 3}") for run in range(4) for i in range(6)]
    (cluster,) = cluster_failures(rows)
    assert cluster.environment == EVERYWHERE and not cluster.environment_specific
    assert "every worker" in cluster.reason


def test_single_failure_is_not_enough_evidence() -> None:
    rows = [failing("r1", "t::a", "gw1", "oops"), row("r1", "t::a", "gw0"), row("r2", "t::a", "gw0")]
    (cluster,) = cluster_failures(rows)
    assert cluster.environment == TOO_FEW and not cluster.environment_specific
    assert "single failure" in cluster.reason


def test_confined_to_one_worker_by_chance_is_not_environment_specific() -> None:
    # 2 failures, each in a variant that also ran (and passed) on two other workers: too little
    workers = ["gw0", "gw1", "gw2"] * 10
    variants = [f"v{i // 3}" for i in range(30)]
    failed = [w == "gw2" and v in ("v0", "v1") for w, v in zip(workers, variants)]
    env, specific, reason = environment(workers, failed, variants)
    assert (env, specific) == (EVERYWHERE, False) and "chance" in reason
    failed = [w == "gw2" and v < "v6" for w, v in zip(workers, variants)]
    assert environment(workers, failed, variants)[:2] == ("only on gw2", True)
    assert environment(["gw0"] * 9, [True] * 5 + [False] * 4, ["v"] * 9)[0] == ONE_WORKER


def test_failures_bunched_on_a_worker_by_the_scheduler_are_not_blamed_on_it() -> None:
    # every failing variant ran once, on gw1: worker and variant cannot be told apart
    workers = ["gw1"] * 8 + ["gw0"] * 8
    failed = [True] * 6 + [False] * 10
    env, specific, reason = environment(workers, failed, [f"v{i}" for i in range(16)])
    assert (env, specific) == (NOT_TESTABLE, False)
    assert "no variant of these tests ran on more than one worker" in reason


def test_a_variant_failing_on_every_worker_it_ran_on_is_not_worker_specific() -> None:
    # the failing variants also ran on gw0 and failed there too: the variant, not the worker
    workers = ["gw1"] * 6 + ["gw0"] * 6 + ["gw0"] * 10
    variants = [f"v{i}" for i in range(6)] * 2 + [f"p{i}" for i in range(10)]
    failed = [True] * 12 + [False] * 10
    hits_gw1_only = [w == "gw1" and f for w, f in zip(workers, failed)]
    env, specific, _ = environment(workers, hits_gw1_only, variants)
    assert specific and env == "only on gw1"   # sanity: the test does see a real effect
    assert environment(workers, failed, variants)[:2] == (EVERYWHERE, False)


def test_skipped_runs_do_not_count_as_executions_and_order_is_by_count() -> None:
    rows = [failing("r1", "t::a", "gw1", "oops"), failing("r2", "t::a", "gw1", "oops"),
            row("r1", "t::a", "gw0", "skipped"), row("r2", "t::a", "gw0", "skipped"),
            failing("r3", "t::b", "gw0", "other", exc="KeyError"), row("r3", "t::c", "gw0", "xfailed")]
    clusters = cluster_failures(rows)
    assert [c.count for c in clusters] == [2, 1]
    assert clusters[0].environment == ONE_WORKER
    assert isinstance(clusters[0], Cluster)
    json.dumps([c.to_dict() for c in clusters])


def test_timestamps_may_be_missing_or_epoch_numbers() -> None:
    rows = [failing("r1", "t::a", "gw0", "x"), failing("r2", "t::a", "gw0", "x")]
    rows[0]["finished_at"], rows[1]["finished_at"] = None, T0.timestamp()
    (cluster,) = cluster_failures(rows)
    assert cluster.first_seen == cluster.last_seen == T0


# -- fingerprints keep what tells messages apart ---------------------------------------------------

def test_two_different_server_error_texts_are_two_clusters() -> None:
    def server(run: str, test: str, text: str) -> dict:
        return failing(run, test, "gw0", f"server said '{text}' (request 9fceb02d0ae5 on port 54321)",
                       exc="HTTPError")
    rows = [server("r1", "t::a", "ledger balance overflow for account id 7"),
            server("r1", "t::b", "ledger balance overflow for account id 9"),
            server("r1", "t::c", "memo could not be encoded as latin-1 text"),
            server("r1", "t::d", "memo could not be encoded as latin-1 text")]
    clusters = cluster_failures(rows)
    assert sorted(c.count for c in clusters) == [2, 2]
    assert {c.message for c in clusters} == {
        "server said 'ledger balance overflow for account id <n>' (request <id> on port <n>)",
        "server said 'memo could not be encoded as latin-1 text' (request <id> on port <n>)"}


def test_http_status_codes_tell_server_errors_apart() -> None:
    first = fingerprint("failed", "HTTPError: HTTP 500 Internal Server Error", "")
    second = fingerprint("failed", "HTTPError: HTTP 503 Service Unavailable", "")
    assert first.key != second.key and first.message == "HTTP 500 Internal Server Error"


words = st.text(st.characters(whitelist_categories=("Ll", "Lu")), min_size=1, max_size=30)


@settings(max_examples=100)
@given(a=words, b=words)
def test_messages_differing_in_words_have_different_fingerprints(a: str, b: str) -> None:
    first = fingerprint("failed", f"RuntimeError: server said '{a}'", "")
    second = fingerprint("failed", f"RuntimeError: server said '{b}'", "")
    assert (first.key == second.key) == (" ".join(a.split()) == " ".join(b.split()))


def cli_crash(tag: str, path: str = "/srv/a/textstat.py") -> str:
    """An assertion echoing a CLI's stderr, as pytest reports ``assert ran.returncode in (0, 2),
    ran.stderr.decode()``: every crash of the program starts with the same traceback header."""
    return (f"AssertionError: Traceback (most recent call last):\n"
            f'    File "{path}", line 90, in <module>\n      sys.exit(main())\n'
            f"               ^^^^^^\n"
            f'    File "{path}", line 38, in wrap\n      raise _fault("{tag}")\n'
            f"  Fault: unexpected state [DEFECT:{tag}]\n  \nassert 1 in (0, 2)\n"
            f" +  where 1 = CompletedProcess(args=['python', '{path}'], returncode=1).returncode")


def test_a_traceback_echoed_in_the_message_is_told_apart_by_its_exception_line() -> None:
    wrap, strip = fingerprint("failed", cli_crash("wrap-width"), ""), fingerprint("failed", cli_crash("strip"), "")
    assert wrap.key != strip.key
    assert wrap.message == "Fault: unexpected state [DEFECT:wrap-width]"
    # where the program lives is not part of the failure
    assert fingerprint("failed", cli_crash("strip", "/other/checkout/textstat.py"), "").key == strip.key


@pytest.mark.parametrize("text", ["Traceback (most recent call last):",  # cut before any frame
                                  "AssertionError: Traceback (most recent call last):\n  File \"x.py\", line 1"])
def test_a_traceback_header_without_its_exception_line_stays_the_headline(text: str) -> None:
    assert normalise_message(text) == text.splitlines()[0]
