"""Drift between two samples of requests, per field: generated vs production, or production
captured then vs production captured now.

A :class:`Profile` summarises a sample per endpoint and field (the positions of
:func:`infer.request_document`: ``path.id``, ``query.limit``, ``headers.accept``,
``body.price``, ``body.tags`` for every tag): how many requests hold the field, the JSON types
seen, and either a numeric sample (at most :data:`SAMPLE_MAX` values, subsampled with a fixed
seed) or category counts (values, and the character-class shapes of strings). The statistical
model stores its training data's profile, so a new capture can be compared with what the model
learned from without the original traffic.

:func:`drift` compares two profiles field by field:

- PSI, ``sum((q - p) * ln(q / p))`` over categories (values, or compact shapes when the
  reference has more than :data:`CATEGORIES_MAX` distinct values or mostly unique ones) or
  over numeric bins (deciles of the reference; the values themselves when it has at most 20
  distinct), every share epsilon-smoothed (:data:`EPSILON`) and renormalised;
- numeric fields: the two-sample Kolmogorov-Smirnov statistic and p-value (``scipy.stats.ks_2samp``);
- categorical fields: the Jensen-Shannon distance, base 2 (0 same, 1 disjoint);
- a field whose kind changed (numbers then, strings now) is compared on its JSON types;
- the presence rate of optional fields, and the endpoint mix (PSI and JS over endpoints).

Fields are sorted by PSI, largest first; one is ``drifting`` when its PSI passes the threshold
(0.1 by default: 0.1-0.25 is the usual "moderate shift", above 0.25 "large") and the shift is
significant (KS p-value, or the chi-square p-value of the category counts, below ``alpha``,
0.01): PSI alone is noisy on small samples (about ``bins / n`` even with no shift at all).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, ks_2samp

from testfleet.generation.infer import INT_STRING, json_type, request_document, shape_of
from testfleet.generation.records import CapturedRequest

__all__ = ["CATEGORIES_MAX", "EPSILON", "SAMPLE_MAX", "DriftReport", "FieldDrift", "PresenceDrift",
           "Profile", "compact_shape", "drift", "field_values", "profile", "psi"]

SAMPLE_MAX = 4000
CATEGORIES_MAX = 50  # more distinct strings than this: compared by shape
COUNTS_MAX = 200  # categories kept per field in a profile (the rest counted as <other>)
EPSILON = 1e-4
PRESENCE_THRESHOLD = 0.1
ALPHA = 0.01  # a field drifts when its PSI passes the threshold and its test says p < ALPHA
OTHER = "<other>"


def field_values(request: CapturedRequest) -> dict[str, list[Any]]:
    """``{field path: [scalar values]}`` of one request (array items share their array's path)."""
    out: dict[str, list[Any]] = {}

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                walk(sub, f"{path}.{key}" if path else str(key))
        elif isinstance(value, list):
            out.setdefault(path, [])
            for item in value:
                walk(item, path)
        else:
            out.setdefault(path, []).append(value)

    doc = request_document(request)
    for part in ("path", "query", "headers"):
        walk(doc[part], part)
    if doc["body"] is not None:
        walk(doc["body"], "body")
    return {k: v for k, v in out.items() if v}


def compact_shape(text: str) -> str:
    """A string's shape with runs of one class collapsed (``Red Widget 12`` -> ``Aa Aa 9``):
    what drift compares for free-form strings, robust to lengths."""
    shape = shape_of(text)
    return "".join(c for i, c in enumerate(shape) if i == 0 or c != shape[i - 1] or c not in "Aa9")


def _token(value: Any) -> str:
    return value if isinstance(value, str) else f"{json_type(value)}:{value!r}"


@dataclass
class FieldProfile:
    present: int = 0  # requests holding the field
    types: dict[str, int] = field(default_factory=dict)
    numeric: list[float] | None = None  # the sample, when every value is a number (or int string)
    counts: dict[str, int] = field(default_factory=dict)  # categories (top COUNTS_MAX + <other>)
    shapes: dict[str, int] = field(default_factory=dict)
    distinct: int = 0


@dataclass
class Profile:
    """Per-endpoint, per-field summary of a sample of requests (JSON-ready with to_dict)."""

    endpoints: dict[str, int] = field(default_factory=dict)
    fields: dict[str, dict[str, FieldProfile]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"endpoints": self.endpoints,
                "fields": {ep: {f: asdict(p) for f, p in fs.items()} for ep, fs in self.fields.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        return cls(dict(data["endpoints"]), {ep: {f: FieldProfile(**p) for f, p in fs.items()}
                                             for ep, fs in data["fields"].items()})


def _cap(counter: Counter) -> dict[str, int]:
    items = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
    kept = dict(items[:COUNTS_MAX])
    rest = sum(c for _, c in items[COUNTS_MAX:])
    if rest:
        kept[OTHER] = kept.get(OTHER, 0) + rest
    return kept


def profile(requests: list[CapturedRequest], *, seed: int = 0) -> Profile:
    """The :class:`Profile` of a sample of requests (numeric samples drawn with ``seed``)."""
    raw: dict[str, dict[str, list[Any]]] = {}
    present: dict[str, Counter] = {}
    endpoints: Counter = Counter()
    for request in requests:
        ep = request.endpoint
        endpoints[ep] += 1
        fields = raw.setdefault(ep, {})
        seen = present.setdefault(ep, Counter())
        for name, values in field_values(request).items():
            fields.setdefault(name, []).extend(values)
            seen[name] += 1
    rng = np.random.default_rng(seed)
    out = Profile(dict(endpoints), {})
    for ep, fields in raw.items():
        out.fields[ep] = {}
        for name, values in fields.items():
            prof = FieldProfile(present=present[ep][name], types=dict(Counter(json_type(v) for v in values)))
            numbers = _as_numbers(values)
            if numbers is not None:
                if len(numbers) > SAMPLE_MAX:
                    numbers = numbers[np.sort(rng.choice(len(numbers), SAMPLE_MAX, replace=False))]
                prof.numeric = numbers.tolist()
            tokens = Counter(_token(v) for v in values)
            prof.distinct = len(tokens)
            prof.counts = _cap(tokens)
            prof.shapes = _cap(Counter(compact_shape(v) if isinstance(v, str) else _token(v) for v in values))
            out.fields[ep][name] = prof
    return out


def _as_numbers(values: list[Any]) -> np.ndarray | None:
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        arr = np.asarray(values, dtype=np.float64)
    elif all(isinstance(v, str) and INT_STRING.match(v) for v in values):
        arr = np.asarray([float(v) for v in values], dtype=np.float64)
    else:
        return None
    return arr if np.all(np.isfinite(arr)) else None


def _shares(counts: Sequence[float]) -> np.ndarray:
    p = np.asarray(counts, dtype=np.float64)
    p = p / p.sum() if p.sum() > 0 else np.full(len(p), 1.0 / len(p))
    p = np.maximum(p, EPSILON)
    return p / p.sum()


def psi(reference: Sequence[float], other: Sequence[float]) -> float:
    """Population stability index of two count (or share) vectors over the same categories."""
    p, q = _shares(reference), _shares(other)
    return float(np.sum((q - p) * np.log(q / p)))


def _aligned(ref: dict[str, int], other: dict[str, int]) -> tuple[list[int], list[int]]:
    keys = list(ref) + [OTHER] if OTHER not in ref else list(ref)
    known = set(ref)
    r = [ref.get(k, 0) for k in keys]
    o = [other.get(k, 0) if k != OTHER else 0 for k in keys]
    o[keys.index(OTHER)] += sum(c for k, c in other.items() if k not in known or k == OTHER)
    return r, o


@dataclass
class FieldDrift:
    endpoint: str
    field: str
    kind: str  # numeric | categorical | shape | types
    psi: float
    js: float | None
    ks: float | None
    ks_pvalue: float | None
    chi2_pvalue: float | None  # categorical: chi-square test of the two count vectors
    n_reference: int
    n_other: int
    drifting: bool


@dataclass
class PresenceDrift:
    endpoint: str
    field: str
    reference_rate: float
    other_rate: float
    drifting: bool


@dataclass
class DriftReport:
    threshold_psi: float
    fields: list[FieldDrift]
    presence: list[PresenceDrift]
    endpoint_psi: float
    endpoint_js: float
    endpoint_mix_drifting: bool
    missing: list[str] = field(default_factory=list)  # endpoints of the reference absent in the other

    @property
    def drifting_fields(self) -> list[FieldDrift]:
        return [f for f in self.fields if f.drifting]

    @property
    def drifting(self) -> bool:
        return bool(self.drifting_fields or self.endpoint_mix_drifting
                    or any(p.drifting for p in self.presence))

    def reasons(self, limit: int = 10) -> list[str]:
        """Why the report says drifting, most telling first: the drifting fields (their PSI),
        the optional fields whose presence rate moved, and the endpoint mix."""
        out = [f"{f.endpoint} {f.field} (PSI {f.psi:.3f})" for f in self.drifting_fields]
        out += [f"{p.endpoint} {p.field} present in {p.reference_rate:.0%} then "
                f"{p.other_rate:.0%} of requests" for p in self.presence if p.drifting]
        if self.endpoint_mix_drifting:
            out.append(f"the endpoint mix (PSI {self.endpoint_psi:.3f})")
        return out[:limit] + ([f"and {len(out) - limit} more"] if len(out) > limit else [])

    @property
    def max_psi(self) -> float:
        return max((f.psi for f in self.fields), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "drifting": self.drifting, "max_psi": self.max_psi}

    def table(self, limit: int = 20) -> str:
        """A plain-text table of the ``limit`` fields with the largest PSI."""
        rows = [f"{'endpoint':<24} {'field':<24} {'kind':<11} {'PSI':>7} {'JS':>6} {'KS p':>8}  drift"]
        for f in self.fields[:limit]:
            js = f"{f.js:.3f}" if f.js is not None else "-"
            ks = f"{f.ks_pvalue:.2g}" if f.ks_pvalue is not None else "-"
            rows.append(f"{f.endpoint:<24} {f.field:<24} {f.kind:<11} {f.psi:7.3f} {js:>6} {ks:>8}"
                        f"  {'yes' if f.drifting else ''}")
        rows.append(f"endpoint mix: PSI {self.endpoint_psi:.3f}, JS {self.endpoint_js:.3f}"
                    f"{' (drifting)' if self.endpoint_mix_drifting else ''}")
        return "\n".join(rows)


def _compare(ep: str, name: str, ref: FieldProfile, other: FieldProfile, threshold: float,
             alpha: float) -> FieldDrift:
    n_ref, n_other = sum(ref.types.values()), sum(other.types.values())
    js = ks = pvalue = chi2 = None
    if ref.numeric is not None and other.numeric is not None and ref.numeric and other.numeric:
        a, b = np.asarray(ref.numeric), np.asarray(other.numeric)
        distinct = np.unique(a)
        if len(distinct) <= 20:
            edges = (distinct[:-1] + distinct[1:]) / 2
        else:
            edges = np.unique(np.quantile(a, np.linspace(0.1, 0.9, 9)))
        bins = len(edges) + 1
        r = np.bincount(np.searchsorted(edges, a, side="right"), minlength=bins)
        o = np.bincount(np.searchsorted(edges, b, side="right"), minlength=bins)
        value, kind = psi(r.tolist(), o.tolist()), "numeric"
        test = ks_2samp(a, b)
        ks, pvalue = float(test.statistic), float(test.pvalue)
    elif ref.numeric is not None and other.numeric is None and other.types.keys() != ref.types.keys():
        r_c, o_c = _aligned(ref.types, other.types)
        value, kind = psi(r_c, o_c), "types"
        js, chi2 = float(jensenshannon(_shares(r_c), _shares(o_c), base=2)), _chi2(r_c, o_c)
    else:
        by_shape = ref.distinct > CATEGORIES_MAX or ref.distinct > n_ref / 2
        r_c, o_c = _aligned(ref.shapes if by_shape else ref.counts, other.shapes if by_shape else other.counts)
        value, kind = psi(r_c, o_c), "shape" if by_shape else "categorical"
        js, chi2 = float(jensenshannon(_shares(r_c), _shares(o_c), base=2)), _chi2(r_c, o_c)
    test = pvalue if pvalue is not None else chi2
    significant = test is None or test < alpha
    return FieldDrift(ep, name, kind, value, js, ks, pvalue, chi2, n_ref, n_other,
                      value > threshold and significant)


def _chi2(ref: list[int], other: list[int]) -> float | None:
    table = np.array([ref, other], dtype=np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return None if table.shape[1] >= 2 else 1.0
    return float(chi2_contingency(table)[1])


def drift(reference: list[CapturedRequest] | Profile, other: list[CapturedRequest] | Profile, *,
          threshold_psi: float = 0.1, presence_threshold: float = PRESENCE_THRESHOLD,
          alpha: float = ALPHA) -> DriftReport:
    """Compare ``other`` with ``reference`` per endpoint and field (see the module docstring)."""
    ref = reference if isinstance(reference, Profile) else profile(reference)
    oth = other if isinstance(other, Profile) else profile(other)
    fields: list[FieldDrift] = []
    presence: list[PresenceDrift] = []
    shared = [ep for ep in ref.endpoints if ep in oth.endpoints]
    for ep in shared:
        rf, of = ref.fields.get(ep, {}), oth.fields.get(ep, {})
        for name in sorted(set(rf) | set(of)):
            ref_rate = rf[name].present / ref.endpoints[ep] if name in rf else 0.0
            oth_rate = of[name].present / oth.endpoints[ep] if name in of else 0.0
            if ref_rate < 1.0 or oth_rate < 1.0:
                presence.append(PresenceDrift(ep, name, ref_rate, oth_rate,
                                              abs(ref_rate - oth_rate) > presence_threshold))
            if name in rf and name in of:
                fields.append(_compare(ep, name, rf[name], of[name], threshold_psi, alpha))
    fields.sort(key=lambda f: (-f.psi, f.endpoint, f.field))
    presence.sort(key=lambda p: (-abs(p.reference_rate - p.other_rate), p.endpoint, p.field))
    r_mix, o_mix = _aligned(dict(ref.endpoints), dict(oth.endpoints))
    mix_psi = psi(r_mix, o_mix)
    mix_js = float(jensenshannon(_shares(r_mix), _shares(o_mix), base=2))
    if math.isnan(mix_js):
        mix_js = 0.0
    missing = [ep for ep in ref.endpoints if ep not in oth.endpoints]
    return DriftReport(threshold_psi, fields, presence, mix_psi, mix_js, mix_psi > threshold_psi, missing)
