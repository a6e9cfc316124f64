"""Failure clusters: the same failure, recognised across runs, workers and tests.

Approach. Every failing execution gets a :class:`Fingerprint`: its exception type, its message
*normalised* (:mod:`testfleet.mutation.failure_text`: only what varies between occurrences of
one problem is replaced - paths, times, ids, addresses, numbers - while literal text and HTTP
status codes are kept, so two different server error texts stay two clusters; of the message
only its headline: the first line, or the exception line of a traceback that line opens)
and the top three *user* frames
of its traceback, innermost first, as ``file:function`` (no line numbers, so editing a file does
not split a cluster; files as their last two path components, so checkouts in different places
agree). Frames of site-packages, the Python standard library, pytest, pluggy and testfleet's
execution harness are not user frames. Tracebacks are read in pytest's long/short/auto layout
and in Python's native one; of a chained exception the last (outermost) one counts. Crashes and
timeouts fingerprint on the outcome, the exit description and the top user frames of the
faulthandler dump (the current thread's when there are several). The key hashes all of it.

Executions with equal keys form a :class:`Cluster`. Whether a cluster is an *environment*
problem is a test, not a look at where its failures landed: the scheduler decides which variants
a worker runs, so failures of a few variants bunch on a worker without the worker playing any
part. Every execution of the cluster's tests (not skipped or xfailed) is counted per worker and
per variant, and a stratified test (Cochran-Mantel-Haenszel, exact for small counts; see
:mod:`testfleet.analysis.stratified`) asks whether failing this way depends on the worker among
the variants that ran on more than one worker. Below ``alpha`` the cluster is "only on S" (its
failures in those variants all on S) or "mostly on W"; without such variants it is "not testable:
confounded with the variants"; a single failure is never enough. The statistics are pure: rows
in, clusters out; no store access.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import numpy as np

from testfleet.analysis.stratified import NOT_TESTABLE, stratified_test
from testfleet.model import FAILURE_OUTCOMES, stable_id
from testfleet.mutation.failure_text import TRACEBACK, headline, normalise_message

TOP_FRAMES = 3
NOT_EXECUTED = frozenset({"skipped", "xfailed"})
EVERYWHERE = "everywhere"
TOO_FEW = "everywhere (too few executions to tell)"
ONE_WORKER = "everywhere (only one worker ran these tests)"

_PYTEST_LOC = re.compile(r"^(\S+?):(\d+):(?: (.*))?$")
_NATIVE_LOC = re.compile(r'^\s*File "(.+?)", line \d+, in (.+?)\s*$')
_DUMP_LOC = re.compile(r'^\s*File "(.+?)", line \d+ in (.+?)\s*$')
_DEF = re.compile(r"^\s*(?:>\s*)?(?:async\s+)?def\s+(\w+)\s*\(")
_CHAIN = re.compile(r"^(?:The above exception was the direct cause of the following exception:|"
                    r"During handling of the above exception, another exception occurred:)\s*$", re.MULTILINE)
_THREAD = re.compile(r"^(Current thread|Thread) 0x[0-9a-fA-F]+.*:\s*$", re.MULTILINE)
_EXC = re.compile(r"^([A-Za-z_][\w.]*)(?::\s*(.*))?$", re.DOTALL)
_NOT_USER = re.compile(r"(?i)(?:site|dist)-packages[/\\]|[/\\]lib[/\\]python\d[\d.]*[/\\]|^<frozen |"
                       r"(?:^|[/\\])(?:_pytest|pluggy)[/\\]|testfleet[/\\]execution[/\\]")


@dataclass(frozen=True)
class Fingerprint:
    key: str
    exception: str
    message: str
    frames: tuple[str, ...]


def fingerprint(outcome: str, message: str, longrepr: str) -> Fingerprint:
    """The fingerprint of one failing execution (see the module docstring)."""
    return _fingerprint(str(outcome or "failed"), message or "", longrepr or "")


@lru_cache(maxsize=4096)
def _fingerprint(outcome: str, message: str, longrepr: str) -> Fingerprint:
    if outcome in ("crashed", "timeout"):
        frames = _dump_frames(longrepr) or _traceback_frames(longrepr)
        exception, text = outcome, _lost_test_headline(outcome, message)
    else:
        section = _CHAIN.split(_first_phase(longrepr))[-1]
        frames = _traceback_frames(section)
        exception, text = _exception_and_message(outcome, message, section)
    user = tuple(f"{_short_path(path)}:{func}" for path, func in frames if not _NOT_USER.search(path))
    user = user[:TOP_FRAMES]
    return Fingerprint(stable_id("failure", exception, text, user), exception, text, user)


def _first_phase(longrepr: str) -> str:
    """The worker joins the tracebacks of several failing phases; the first is the message's."""
    return re.split(r"\n\n(?=\[(?:setup|call|teardown)\] )", longrepr)[0]


def _short_path(path: str) -> str:
    return "/".join(path.replace("\\", "/").rstrip("/").split("/")[-2:])


def _traceback_frames(text: str) -> list[tuple[str, str]]:
    """(file, function) of every traceback entry, innermost first (pytest's or Python's layout)."""
    pytest_frames: list[tuple[str, str]] = []
    native: list[tuple[str, str]] = []
    current_def: str | None = None
    for line in text.splitlines():
        if match := _DEF.match(line):
            current_def = match.group(1)
        elif match := _NATIVE_LOC.match(line):
            native.append((match.group(1), match.group(2)))
        elif not line.startswith(" ") and (match := _PYTEST_LOC.match(line)):
            note = (match.group(3) or "").strip()
            func = note[3:].strip() if note.startswith("in ") else current_def or "?"
            pytest_frames.append((match.group(1), func))
            current_def = None
    return list(reversed(pytest_frames or native))


def _dump_frames(text: str) -> list[tuple[str, str]]:
    """faulthandler's frames (already most recent first), of the current thread if it says."""
    blocks = _THREAD.split(text)
    # split gives [before, kind, body, kind, body, ...]
    threads = [(blocks[i], blocks[i + 1]) for i in range(1, len(blocks) - 1, 2)]
    chosen = next((body for kind, body in threads if kind == "Current thread"), None)
    if chosen is None:
        chosen = threads[0][1] if threads else text
    return [(m.group(1), m.group(2)) for m in map(_DUMP_LOC.match, chosen.splitlines()) if m]


def _lost_test_headline(outcome: str, message: str) -> str:
    """What is common to the crashes/timeouts of one problem: not the worker, not the test."""
    if exit_ := re.search(r"(?:exited with code|killed by signal) -?\d+(?: \(\w+\))?", message):
        return exit_.group(0)  # exit codes and signals are kept: they tell problems apart
    text = re.sub(r"^worker \S+ crashed: ", "", message.strip())
    text = re.sub(r"^Timeout: .*? (ran longer than)", r"\1", text)
    return normalise_message(text)


def _split_exception(line: str) -> tuple[str | None, str]:
    """("pkg.Type", "rest") of "pkg.Type: rest" (or of a bare "Type"); (None, line) otherwise."""
    match = _EXC.match(line.strip())
    if match and match.group(1).rsplit(".", 1)[-1][:1].isupper() \
            and (match.group(2) is not None or line.strip() == match.group(1)):
        return match.group(1), match.group(2) or ""
    return None, line.strip()


def _exception_and_message(outcome: str, message: str, section: str) -> tuple[str, str]:
    lines = section.splitlines()
    locs = [m for m in map(_PYTEST_LOC.match, lines) if m]
    loc_note = (locs[-1].group(3) or "").strip() if locs else ""
    loc_type = loc_note if re.fullmatch(r"[A-Za-z_][\w.]*", loc_note) else None
    e_lines = [line[1:].strip() for line in lines if line.startswith("E ")]
    if not e_lines and not locs:  # Python's native layout: the exception is the last line
        e_lines = [line for line in lines if line.strip() and not line.startswith(" ")][-1:]
    e_type, e_rest = _split_exception(e_lines[0]) if e_lines else (None, "")
    first = next((s for s in message.splitlines() if s.strip()), "")
    m_type, m_rest = _split_exception(first) if first else (None, "")
    candidates = [t for t in (m_type, e_type) if t]
    exception = next((t for t in candidates if loc_type and (t == loc_type or t.endswith("." + loc_type))),
                     loc_type or (candidates[0] if candidates else outcome))
    if m_type:
        rest = m_rest or next((s for s in message.splitlines()[1:] if s.strip()), "")
        if rest.strip().endswith(TRACEBACK):  # the rest is a traceback: its exception line
            rest = headline("\n".join([rest, *message.split("\n", 1)[1:]]))
    else:
        rest = first or e_rest
    return exception, normalise_message(rest)


@dataclass
class Cluster:
    key: str
    exception: str
    message: str
    frames: tuple[str, ...]
    count: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    tests: list[str] = field(default_factory=list)
    runs: set[str] = field(default_factory=set)
    workers: dict[str, int] = field(default_factory=dict)
    environment: str = EVERYWHERE
    environment_specific: bool = False
    reason: str = ""
    outcomes: dict[str, int] = field(default_factory=dict)
    example: str = ""  # the raw message of the latest occurrence

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key, "exception": self.exception, "message": self.message,
            "frames": list(self.frames), "count": self.count,
            "first_seen": self.first_seen.isoformat() if self.first_seen else None,
            "last_seen": self.last_seen.isoformat() if self.last_seen else None,
            "tests": list(self.tests), "runs": sorted(self.runs), "workers": dict(self.workers),
            "environment": self.environment, "environment_specific": self.environment_specific,
            "reason": self.reason, "outcomes": dict(self.outcomes), "example": self.example,
        }


def as_datetime(value: Any) -> datetime | None:
    """Timestamps as aware datetimes (naive ones taken as UTC; numbers as epoch seconds)."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, tz=UTC)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def cluster_failures(rows: Sequence[Mapping[str, Any]], *, by: str = "worker",
                     alpha: float = 0.05) -> list[Cluster]:
    """Cluster the failing rows; ``rows`` are all executions of the runs considered (the passing
    ones tell which workers ran the tests). ``by`` names the column that identifies a worker or
    instance. Sorted by count, most frequent first."""
    ran: dict[str, list[tuple[str, str, str | None]]] = defaultdict(list)  # per test: worker, variant, key
    clusters: dict[str, Cluster] = {}
    tests: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        outcome, nodeid, worker = str(row.get("outcome")), str(row.get("nodeid")), str(row.get(by) or "?")
        variant = str(row.get("variant_id") or nodeid)   # a test without parameters: one variant
        if outcome not in FAILURE_OUTCOMES:
            if outcome not in NOT_EXECUTED:
                ran[nodeid].append((worker, variant, None))
            continue
        fp = fingerprint(outcome, row.get("message") or "", row.get("longrepr") or "")
        ran[nodeid].append((worker, variant, fp.key))
        cluster = clusters.get(fp.key)
        if cluster is None:
            cluster = clusters[fp.key] = Cluster(fp.key, fp.exception, fp.message, fp.frames)
        cluster.count += 1
        tests[fp.key].add(nodeid)
        cluster.runs.add(str(row.get("run_id")))
        cluster.workers[worker] = cluster.workers.get(worker, 0) + 1
        cluster.outcomes[outcome] = cluster.outcomes.get(outcome, 0) + 1
        when = as_datetime(row.get("finished_at") or row.get("started_at"))
        if when is not None:
            if cluster.first_seen is None or when < cluster.first_seen:
                cluster.first_seen = when
            if cluster.last_seen is None or when >= cluster.last_seen:
                cluster.last_seen = when
                cluster.example = str(row.get("message") or "")
        if not cluster.example:
            cluster.example = str(row.get("message") or "")
    for key, cluster in clusters.items():
        cluster.tests = sorted(tests[key])
        executions = [e for nodeid in cluster.tests for e in ran[nodeid]]
        cluster.environment, cluster.environment_specific, cluster.reason = environment(
            [w for w, _, _ in executions], [k == key for _, _, k in executions],
            [v for _, v, _ in executions], alpha=alpha)
    far_past = datetime.min.replace(tzinfo=UTC)
    return sorted(clusters.values(), key=lambda c: (-c.count, -(c.last_seen or far_past).timestamp(), c.key))


def environment(workers: Sequence[str], failed: Sequence[bool], variants: Sequence[str], *,
                alpha: float = 0.05, seed: int = 0) -> tuple[str, bool, str]:
    """(environment, specific?, reason) of one cluster, from every execution of its tests:
    the worker of each, whether it failed this way, and its variant.

    "Only on S" needs a test: a worker runs the variants the scheduler gave it, so failures
    bunched on one worker may be the variants' doing. Only variants that ran on more than one
    worker can tell, and the stratified test (:mod:`testfleet.analysis.stratified`) uses those
    alone; without any, the pattern is "not testable: confounded with the variants"."""
    ran = Counter(workers)
    hits = Counter(w for w, f in zip(workers, failed) if f)
    k = sum(hits.values())
    tally = ", ".join(f"{w} {hits.get(w, 0)}/{ran[w]}" for w in sorted(ran, key=_natural))
    if len(ran) < 2:
        return ONE_WORKER, False, f"only {_names(ran)} ran the affected tests: nothing to compare with"
    if set(hits) == set(ran):
        return EVERYWHERE, False, f"failed on every worker that ran the affected tests ({tally})"
    if k < 2:
        return TOO_FEW, False, f"failed/ran per worker: {tally}; a single failure shows no pattern"
    names = sorted(ran, key=_natural)
    codes = np.array([names.index(w) for w in workers])
    hit = np.asarray(failed, dtype=bool)
    found = stratified_test(codes, hit, np.asarray(variants, dtype=object), seed=seed)
    if found.p_value is None:
        return NOT_TESTABLE, False, (
            f"failed/ran per worker: {tally}; no variant of these tests ran on more than one "
            "worker, so which worker ran it cannot be told apart from which variant it was")
    within = f"within the {found.strata} variant(s) that ran on more than one worker"
    if found.p_value >= alpha:
        return EVERYWHERE, False, (f"failed/ran per worker: {tally}; {within}, the worker makes "
                                   f"no difference that chance does not explain "
                                   f"({found.test} p={found.p_value:.2g})")
    mixed = _mixed(codes, np.asarray(variants, dtype=object))
    n = np.bincount(codes[mixed], minlength=len(names))
    f = np.bincount(codes[mixed & hit], minlength=len(names))
    where = [names[i] for i in np.flatnonzero(f)]
    label = (f"only on {_names(where)}" if len(where) < np.count_nonzero(n)
             else f"mostly on {names[int(np.argmax(f / np.maximum(n, 1)))]}")
    shown = ", ".join(f"{names[i]} {f[i]}/{n[i]}" for i in np.flatnonzero(n))
    return label, True, f"{within}: failed/ran {shown} ({found.test} p={found.p_value:.2g})"


def _mixed(codes: np.ndarray, variants: np.ndarray) -> np.ndarray:
    """Executions of variants that ran on more than one worker."""
    seen: dict[Any, set[int]] = defaultdict(set)
    for v, c in zip(variants.tolist(), codes.tolist()):
        seen[v].add(c)
    return np.array([len(seen[v]) > 1 for v in variants.tolist()], dtype=bool)


def _names(workers: Iterable[str]) -> str:
    return ", ".join(sorted(workers, key=_natural))


def _natural(name: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]
