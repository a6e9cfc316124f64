"""A learned model of the values at one position of a request document, and its generator.

:func:`learn_node` turns sample values (the same positions :func:`infer.infer_schema` sees)
into a JSON-ready node::

    {"n": 120, "types": {"string": 100, "null": 20},
     "boolean": {"true": 7, "false": 3},
     "integer" | "number": {"kind": "categorical", "values": [...], "counts": [...]}
                         | {"kind": "quantiles", "q": [129 values], "int": true, "decimals": 0},
     "string": {"top": [[value, count], ...], "other": 12, "model": OTHER},
     "array": {"lengths": {"values": [...], "counts": [...]}, "items": node | null},
     "object": {"props": [[key, times_present, node], ...]}}

where OTHER (how strings outside ``top`` are made) is ``{"kind": "shapes", "shapes": [...],
"counts": [...]}`` (character-class patterns such as ``Aaaa-999``), ``{"kind": "intstr",
"num": numeric}``, ``{"kind": "uuid"}`` or ``{"kind": "datetime", "q": [...], "unit": "s",
"tz": "Z"}``. :func:`generate_node` draws ``n`` values column-wise with numpy (one draw per
position for all ``n`` values), either ``realistic`` (the learned distributions) or
``explore`` (flattened frequencies, numbers uniform over the observed range with its ends,
optional fields present half the time): both stay inside the inferred schema's bounds.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import numpy as np

from testfleet.generation.infer import (
    INT_STRING,
    detect_format,
    is_enum,
    json_type,
    shape_of,
)

__all__ = ["QUANTILES", "SHAPES_MAX", "TOP_MAX", "Context", "generate_node", "learn_node"]

QUANTILES = 129  # points of the empirical quantile function kept per numeric field
TOP_MAX = 32  # most frequent string values kept as categories (seen at least twice)
SHAPES_MAX = 64  # most frequent character-class shapes kept
DECIMALS_MAX = 6
EXPLORE_POWER = 0.3  # explore: category probabilities ~ p ** 0.3 (rare values favoured)
_PROBS = np.linspace(0.0, 1.0, QUANTILES)
_CLASS = {"A": (65, 26), "a": (97, 26), "9": (48, 10)}


# -- learning --------------------------------------------------------------------------------
def learn_node(samples: list[Any]) -> dict[str, Any]:
    by_type: dict[str, list[Any]] = {}
    for value in samples:
        by_type.setdefault(json_type(value), []).append(value)
    if "integer" in by_type and "number" in by_type:
        by_type["number"] = by_type.pop("integer") + by_type["number"]
    node: dict[str, Any] = {"n": len(samples), "types": {t: len(v) for t, v in by_type.items()}}
    for kind, values in by_type.items():
        if kind == "boolean":
            node[kind] = {"true": sum(values), "false": len(values) - sum(values)}
        elif kind in ("integer", "number"):
            node[kind] = _learn_numeric(values, integer=kind == "integer")
        elif kind == "string":
            node[kind] = _learn_string(values)
        elif kind == "array":
            lengths = Counter(len(v) for v in values)
            items = [item for value in values for item in value]
            node[kind] = {"lengths": _categorical(lengths), "items": learn_node(items) if items else None}
        elif kind == "object":
            keys: dict[str, list[Any]] = {}
            for value in values:
                for key, sub in value.items():
                    keys.setdefault(key, []).append(sub)
            node[kind] = {"props": [[k, len(v), learn_node(v)] for k, v in keys.items()]}
    return node


def _categorical(counter: Counter) -> dict[str, list[Any]]:
    items = sorted(counter.items(), key=lambda kv: (-kv[1], json_type(kv[0]), str(kv[0])))
    return {"values": [k for k, _ in items], "counts": [c for _, c in items]}


def _decimals(value: float) -> int:
    text = repr(float(value))
    if "e" in text or "n" in text:
        return DECIMALS_MAX
    return min(DECIMALS_MAX, len(text.split(".")[1].rstrip("0")))


def _learn_numeric(values: list[Any], *, integer: bool) -> dict[str, Any]:
    if is_enum(values):
        return {"kind": "categorical", **_categorical(Counter(values)), "int": integer}
    arr = np.asarray(values, dtype=np.float64)
    q = np.quantile(arr, _PROBS)
    q[0], q[-1] = arr.min(), arr.max()
    decimals = 0 if integer else max(_decimals(v) for v in values)
    return {"kind": "quantiles", "q": [_exact(v, integer) for v in q], "int": integer,
            "decimals": decimals}


def _exact(value: float, integer: bool) -> float | int:
    return int(np.rint(value)) if integer else float(value)


def _learn_string(values: list[str]) -> dict[str, Any]:
    counts = Counter(values)
    if is_enum(values):
        return {"top": [[k, c] for k, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))],
                "other": 0, "model": None}
    frequent = sorted(((k, c) for k, c in counts.items() if c >= 2), key=lambda kv: (-kv[1], kv[0]))
    top = frequent[:TOP_MAX]
    kept = {k for k, _ in top}
    rest = [v for v in values if v not in kept]
    return {"top": [[k, c] for k, c in top], "other": len(rest),
            "model": _learn_other(rest) if rest else None}


def _learn_other(values: list[str]) -> dict[str, Any]:
    fmt = detect_format(values)
    if fmt == "uuid":
        return {"kind": "uuid", "upper": all(v == v.upper() for v in values)}
    if fmt == "date-time":
        stamps = [_epoch(v) for v in values]
        fraction = Counter(len(v[19:].lstrip(".").rstrip("Zz").split("+")[0].split("-")[0])
                           for v in values).most_common(1)[0][0]
        unit = "s" if fraction == 0 else "ms" if fraction <= 3 else "us"
        tz = Counter("Z" if v[-1] in "Zz" else v[-6:] for v in values).most_common(1)[0][0]
        q = np.quantile(np.asarray(stamps, dtype=np.float64), _PROBS)
        return {"kind": "datetime", "q": [float(v) for v in q], "unit": unit, "tz": tz}
    if all(INT_STRING.match(v) for v in values) and len(set(values)) > 1:
        return {"kind": "intstr", "num": _learn_numeric([int(v) for v in values], integer=True)}
    shapes = _categorical(Counter(shape_of(v) for v in values))
    return {"kind": "shapes", "shapes": shapes["values"][:SHAPES_MAX],
            "counts": shapes["counts"][:SHAPES_MAX]}


# -- generation ------------------------------------------------------------------------------
class Context:
    """What one generation call shares: its random generator, mode and value weights
    (``{field path: {value: weight}}`` for this endpoint)."""

    def __init__(self, rng: np.random.Generator, mode: str,
                 weights: dict[str, dict[Any, float]] | None = None) -> None:
        self.rng, self.explore = rng, mode == "explore"
        self.weights = weights or {}

    def probs(self, counts: list[float], values: list[Any] | None = None, path: str = "") -> np.ndarray:
        p = np.asarray(counts, dtype=np.float64)
        if self.explore:
            p = p ** EXPLORE_POWER
        if values is not None and path in self.weights:
            boost = self.weights[path]
            p = p * np.array([float(boost.get(v, boost.get(str(v), 1.0))) for v in values])
        total = p.sum()
        return p / total if total > 0 else np.full(len(p), 1.0 / len(p))

    def choice(self, counts: list[float], n: int, values: list[Any] | None = None,
               path: str = "") -> np.ndarray:
        if len(counts) == 1:
            return np.zeros(n, dtype=np.int64)
        cdf = np.cumsum(self.probs(counts, values, path))
        return np.minimum(np.searchsorted(cdf, self.rng.random(n) * cdf[-1], side="right"),
                          len(counts) - 1)

    def presence(self, rate: float, n: int) -> np.ndarray:
        if rate >= 1.0:
            return np.ones(n, dtype=bool)
        if self.explore:
            rate = 0.5 * rate + 0.25
        return self.rng.random(n) < rate


def _pick(values: list[Any], idx: np.ndarray) -> list[Any]:
    return [values[i] for i in idx.tolist()]


def generate_node(node: dict[str, Any], n: int, ctx: Context, path: str = "") -> list[Any]:
    """``n`` values drawn from a learned node (see the module docstring)."""
    if n == 0:
        return []
    kinds = list(node["types"])
    if len(kinds) == 1:
        return _generate_kind(kinds[0], node, n, ctx, path)
    which = ctx.choice([node["types"][k] for k in kinds], n)
    out: list[Any] = [None] * n
    for i, kind in enumerate(kinds):
        idx = np.flatnonzero(which == i)
        if len(idx):
            for j, value in zip(idx.tolist(), _generate_kind(kind, node, len(idx), ctx, path)):
                out[j] = value
    return out


def _generate_kind(kind: str, node: dict[str, Any], n: int, ctx: Context, path: str) -> list[Any]:
    spec: Any = node.get(kind)  # a node's "types" says which kinds it has: spec is there
    if kind == "null":
        return [None] * n
    if kind == "boolean":
        picked = ctx.choice([spec["true"], spec["false"]], n, [True, False], path)
        return (picked == 0).tolist()
    if kind in ("integer", "number"):
        return _numeric(spec, n, ctx, path)
    if kind == "string":
        return _string(spec, n, ctx, path)
    if kind == "array":
        lengths_spec = spec["lengths"]
        lengths = np.asarray(lengths_spec["values"], dtype=np.int64)[ctx.choice(lengths_spec["counts"], n)]
        if spec["items"] is None:
            return [[] for _ in range(n)]
        items = generate_node(spec["items"], int(lengths.sum()), ctx, path)
        ends = np.cumsum(lengths).tolist()
        starts = [0, *ends[:-1]]
        return [items[a:b] for a, b in zip(starts, ends)]
    objects: list[dict[str, Any]] = [{} for _ in range(n)]
    total = node["types"]["object"]
    for key, present, sub in spec["props"]:
        mask = ctx.presence(present / total, n)
        idx = np.flatnonzero(mask).tolist()
        values = generate_node(sub, len(idx), ctx, f"{path}.{key}" if path else key)
        for j, value in zip(idx, values):
            objects[j][key] = value
    return objects


def _numeric(spec: dict[str, Any], n: int, ctx: Context, path: str) -> list[Any]:
    if spec["kind"] == "categorical":
        return _pick(spec["values"], ctx.choice(spec["counts"], n, spec["values"], path))
    q = np.asarray(spec["q"], dtype=np.float64)
    if ctx.explore:  # uniform over the observed range, with its two ends a tenth of the time
        x = q[0] + (q[-1] - q[0]) * ctx.rng.random(n)
        ends = ctx.rng.random(n)
        x = np.where(ends < 0.05, q[0], np.where(ends > 0.95, q[-1], x))
    else:
        x = np.interp(ctx.rng.random(n), _PROBS, q)
    if spec["int"]:
        return np.clip(np.rint(x), q[0], q[-1]).astype(np.int64).tolist()
    return np.clip(np.round(x, spec["decimals"]), q[0], q[-1]).tolist()


def _string(spec: dict[str, Any], n: int, ctx: Context, path: str) -> list[Any]:
    top = spec["top"]
    values = [v for v, _ in top]
    counts = [c for _, c in top]
    if spec["other"]:
        counts = [*counts, spec["other"]]
    idx = ctx.choice(counts, n, [*values, None] if spec["other"] else values, path)
    out = _pick([*values, None], idx)
    if spec["other"]:
        rest = np.flatnonzero(idx == len(values)).tolist()
        for j, value in zip(rest, _other(spec["model"], len(rest), ctx)):
            out[j] = value
    return out


def _other(model: dict[str, Any], n: int, ctx: Context) -> list[str]:
    if n == 0:
        return []
    kind = model["kind"]
    if kind == "intstr":
        return [str(v) for v in _numeric(model["num"], n, ctx, "")]
    if kind == "uuid":
        raw = ctx.rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
        raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
        raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
        hexes = [row.hex() for row in raw]
        out = [f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}" for h in hexes]
        return [s.upper() for s in out] if model["upper"] else out
    if kind == "datetime":
        q = np.asarray(model["q"], dtype=np.float64)
        u = ctx.rng.random(n)
        secs = q[0] + (q[-1] - q[0]) * u if ctx.explore else np.interp(u, _PROBS, q)
        scale = {"s": 1, "ms": 1000, "us": 1_000_000}[model["unit"]]
        stamps = (secs * scale).astype(np.int64).astype(f"datetime64[{model['unit']}]")
        return [s + model["tz"] for s in np.datetime_as_string(stamps, unit=model["unit"]).tolist()]
    shapes, counts = model["shapes"], model["counts"]
    which = ctx.choice(counts, n)
    out = [""] * n
    for i in np.unique(which).tolist():
        idx = np.flatnonzero(which == i)
        for j, text in zip(idx.tolist(), _fill_shape(shapes[i], len(idx), ctx.rng)):
            out[j] = text
    return out


def _fill_shape(shape: str, n: int, rng: np.random.Generator) -> list[str]:
    if not shape:
        return [""] * n
    base = np.array([_CLASS.get(c, (ord(c), 1))[0] for c in shape], dtype=np.uint32)
    size = np.array([_CLASS.get(c, (ord(c), 1))[1] for c in shape], dtype=np.uint32)
    codes = base + (rng.integers(0, 1 << 30, size=(n, len(shape)), dtype=np.uint32) % size)
    return np.ascontiguousarray(codes).view(f"<U{len(shape)}").ravel().tolist()


def _epoch(text: str) -> float:
    """Seconds since the epoch of an RFC 3339 date-time (the local time, offset ignored: the
    generated strings carry the most common offset of the samples)."""
    clean = text[:19].replace("t", "T")
    return float(dt.datetime.fromisoformat(clean).replace(tzinfo=dt.UTC).timestamp())
