"""Which failure a minimisation job works on, and what counts as failing *that* way: one test
line reporting two server errors gives two jobs, each ending on its own defect; the variant's own
text echoed back in the message does not make a shrunk candidate a different failure."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from testfleet.mutation.minimize_job import MAX_JOBS, MinimizeJob, failure_identity, next_failure
from testfleet.space import Choice, Int, Space
from testfleet.space.text import String

WHERE = "test_ledger.py:36:AssertionError"  # one assert line, every server error


def server_error(tag: str) -> str:
    return f'{{"error": "internal error [{tag}]"}}\nassert 500 < 500'


def test_two_server_error_texts_at_one_line_are_two_failures() -> None:
    assert failure_identity(WHERE, server_error("zero-amount")) \
        != failure_identity(WHERE, server_error("jpy-half-up"))
    # what varies between occurrences of one error does not split it
    assert failure_identity(WHERE, "timeout after 1.52 s talking to 127.0.0.1:40112") \
        == failure_identity(WHERE, "timeout after 0.97 s talking to 127.0.0.1:51873")


@settings(max_examples=80, deadline=None, derandomize=True, database=None)
@given(st.text(min_size=1, max_size=300), st.text(min_size=1, max_size=300))
def test_the_variants_own_text_echoed_back_is_not_part_of_the_failure(a: str, b: str) -> None:
    def message(memo: str) -> str:
        return f"AssertionError: assert {memo!r} == 'coffee'"

    assert failure_identity(WHERE, message(a), {"memo": a}) \
        == failure_identity(WHERE, message(b), {"memo": b})


def test_a_long_echo_cut_short_is_still_the_variants_text() -> None:
    long = "x" * 90 + "\u0301" + "y" * 40
    cut = f"AssertionError: assert '{long[:70]}...' == 'coffee'"
    assert failure_identity(WHERE, cut, {"memo": long}) \
        == failure_identity(WHERE, "AssertionError: assert 'x\u0301' == 'coffee'", {"memo": "x\u0301"})


def test_only_whole_echoes_of_a_text_value_are_blanked() -> None:
    message = 'patch: {"error": "internal error [ZOO-DEFECT:ledger-patch-deleted]"}'
    assert "ledger-patch-deleted" in failure_identity(WHERE, message, {"memo": "delete"})
    # the items of an order are names: a message naming one says which step failed
    assert "patch:" in failure_identity(WHERE, message, {"order": ["get", "patch"]})


def found(params: dict[str, Any], tag: str, nodeid: str = "t.py::test_create") -> dict[str, Any]:
    return {"base": 0, "nodeid": nodeid, "params": params, "fingerprint": WHERE,
            "message": server_error(tag)}


BASE = {"amount": 1250, "memo": "coffee", "sut.currency": "EUR"}


def test_each_distinct_failure_is_picked_once_from_its_simplest_variant() -> None:
    entries = [found({**BASE, "amount": 0, "memo": "x" * 50, "sut.currency": "JPY"}, "jpy"),
               found({**BASE, "amount": 0, "sut.currency": "JPY"}, "zero"),
               found({**BASE, "sut.currency": "JPY"}, "jpy"),
               found({**BASE, "amount": 0}, "zero")]
    done: set[str] = set()
    picked = []
    while (nxt := next_failure(entries, done, lambda _: BASE)) is not None:
        done.add(nxt[0])
        picked.append(nxt[1])
    # the order of first appearance, each from its variant with the fewest changes
    assert picked == [entries[2], entries[3]]


def test_the_same_failure_in_two_tests_is_minimised_in_each() -> None:
    entries = [found(BASE, "jpy", "t.py::test_create"), found(BASE, "jpy", "t.py::test_lifecycle")]
    done: set[str] = set()
    while (nxt := next_failure(entries, done, lambda _: BASE)) is not None:
        done.add(nxt[0])
    assert len(done) == 2


def test_minimisation_is_bounded_to_max_jobs_failures() -> None:
    entries = [found(BASE, f"defect-{i}") for i in range(MAX_JOBS + 5)]
    done: set[str] = set()
    while (nxt := next_failure(entries, done, lambda _: BASE)) is not None:
        done.add(nxt[0])
    assert len(done) == MAX_JOBS


def drive(job: MinimizeJob, oracle: Any) -> dict[str, Any]:
    while not job.done:
        params = job.pending(timeout=0.05)
        if params is not None:
            job.answer(*oracle(params))
    job.join(5)
    return job.to_event()


def ledger(p: dict[str, Any]) -> tuple[bool, str | None, str]:
    """Two defects behind one assert line: amount 0 (which shows first), and JPY."""
    if p["amount"] == 0:
        return True, WHERE, server_error("zero")
    if p["sut.currency"] == "JPY":
        return True, WHERE, server_error("jpy")
    if "\u0301" in p["memo"]:
        return True, WHERE, f"AssertionError: assert {p['memo']!r} == 'coffee'"
    return False, None, ""


SPACE = Space({"amount": Int(-1000, 10**6), "memo": String(0, 160),
               "sut.currency": Choice(["EUR", "USD", "JPY"])})


def test_a_job_keeps_to_its_own_server_error_text() -> None:
    """Dropping amount=0 leaves the JPY failure: same line, another text, another defect. The
    job for the zero amount must end on amount=0, not drift to currency=JPY (tried first: the
    baseline lists it first)."""
    failing = {"amount": 0, "memo": "coffee", "sut.currency": "JPY"}
    job = MinimizeJob(base=0, case_id="c", nodeid="t.py::test", variant_id="v", fingerprint=WHERE,
                      baseline={"sut.currency": "EUR", "amount": 1250, "memo": "coffee"},
                      failing=failing, fixed={}, space=SPACE, message=server_error("zero")).start()
    event = drive(job, ledger)
    assert event["changes"] == {"amount": [1250, 0]}
    assert event["other_failures"] >= 1 and event["complete"]
    assert event["executions"] <= event["max_tests"]


def test_a_job_shrinks_a_text_the_failure_message_echoes() -> None:
    memo = "caf" + "e\u0301" + "-" * 120
    failing = {**BASE, "memo": memo}
    job = MinimizeJob(base=0, case_id="c", nodeid="t.py::test", variant_id="v", fingerprint=WHERE,
                      baseline=dict(BASE), failing=failing, fixed={}, space=SPACE,
                      message=ledger(failing)[2]).start()
    event = drive(job, ledger)
    assert event["changes"] == {"memo": ["coffee", "\u0301"]} and event["complete"]


def test_explored_failures_show_two_server_errors_at_one_line_as_two_groups() -> None:
    """The console's EXPLORED FAILURES section: one group per failure the minimiser tells
    apart, each with its own minimal variant (not one group per assert line)."""
    from testfleet.model import Outcome, Result
    from testfleet.reporting.exploration import explored_failures

    def result(variant: str, tag: str) -> Result:
        return Result(run_id="r", variant_id=variant, case_id="c", nodeid="t.py::test_create",
                      outcome=Outcome.failed, fingerprint=WHERE, message=server_error(tag))

    variants = {v: {"origin": "mutation", "params": {**BASE, "amount": 0}} for v in "abc"}
    events = [{"nodeid": "t.py::test_create", "fingerprint": WHERE, "changes": {"amount": [1250, 0]},
               "failure": failure_identity(WHERE, server_error(tag))} for tag in ("zero", "jpy")]
    _, grouped = explored_failures([result("a", "zero"), result("b", "jpy"), result("c", "zero")],
                                   {"variants": variants, "minimized": events})
    assert [(first.variant_id, count, minimal) for first, count, minimal in grouped] \
        == [("a", 2, events[0]), ("b", 1, events[1])]
