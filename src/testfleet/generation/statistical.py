"""The statistical generator: per endpoint, a model of the request's values learned from
captured traffic, plus a first-order Markov chain of calls per session.

    model = learn(requests, min_samples=5)          # endpoints with fewer samples: model.skipped
    batch = model.generate(10_000, seed=1)          # realistic: the learned distributions
    edge = model.generate(1_000, seed=1, mode="explore")   # rare values and range ends favoured
    model.generate(100, seed=1, weights={"POST /items": 5, ("POST /items", "body.category", "tools"): 3})
    flows = model.sessions(20, seed=1)              # call sequences that follow observed transitions
    model.save("model.json"); load_model("model.json")

Per endpoint the model holds the request document's value tree (``valuemodel.learn_node``:
categorical frequencies with a cap and an "other" bucket, numeric quantiles with integer-ness
and decimals, string shapes, optional-field presence rates, array lengths, query parameters)
and the inferred request schema (``infer.EndpointSchema``). The saved file is one JSON
document, ``{"format": "testfleet-statistical-model", "version": 1, ...}``, holding also the
:class:`drift.Profile` of the training data, so ``drift`` can compare a new capture with it.
Generation is deterministic for a seed, on any machine, before and after a save/load.
"""

from __future__ import annotations

import itertools
import json
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from testfleet.atomic import atomic_write_text
from testfleet.errors import GenerationError
from testfleet.generation.drift import Profile, profile
from testfleet.generation.infer import (
    EndpointSchema,
    group_by_endpoint,
    request_document,
)
from testfleet.generation.records import CapturedRequest
from testfleet.generation.valuemodel import Context, generate_node, learn_node

__all__ = ["FORMAT", "MODES", "VERSION", "GenerationError", "StatisticalModel", "learn", "load_model"]

FORMAT = "testfleet-statistical-model"
VERSION = 1
MODES = ("realistic", "explore")
SOURCE = "generated:statistical"
Weights = dict[Any, float]


def derive_seed(seed: int, *parts: Any) -> np.random.Generator:
    """A generator seeded from ``seed`` and labels (strings hashed with crc32): the same
    labels always give the same stream, on any machine."""
    words = [int(seed) & 0xFFFFFFFF, int(seed) >> 32 & 0xFFFFFFFF]
    words += [zlib.crc32(str(p).encode()) for p in parts]
    return np.random.default_rng(np.random.SeedSequence(words))


@dataclass
class EndpointModel:
    endpoint: str
    count: int
    root: dict[str, Any]  # valuemodel node of the request document
    body_kind: dict[str, int]
    schema: EndpointSchema

    @property
    def method(self) -> str:
        return self.endpoint.split(" ", 1)[0]

    @property
    def template(self) -> str:
        return self.endpoint.split(" ", 1)[1]

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "root": self.root, "body_kind": self.body_kind,
                "schema": self.schema.to_dict()}


@dataclass
class StatisticalModel:
    endpoints: dict[str, EndpointModel]
    skipped: dict[str, str] = field(default_factory=dict)  # endpoint -> why no model
    markov: dict[str, Any] = field(default_factory=dict)
    training: Profile = field(default_factory=Profile)
    min_samples: int = 5

    # -- generation ----------------------------------------------------------------------
    def generate(self, n: int, seed: int, *, mode: str = "realistic",
                 weights: Weights | None = None, endpoints: list[str] | None = None
                 ) -> list[CapturedRequest]:
        """``n`` requests, endpoints drawn from the learned mix (times ``weights[endpoint]``),
        values from each endpoint's model; ``weights[(endpoint, field, value)]`` multiplies the
        probability of a categorical value (``field`` as in drift: ``body.category``,
        ``query.limit``, ``path.id``)."""
        if mode not in MODES:
            raise GenerationError(f"unknown generation mode {mode!r}", expected=" or ".join(MODES))
        if n < 0:
            raise GenerationError(f"cannot generate {n} requests", expected="a count >= 0")
        names = self._pick_endpoints(endpoints)
        endpoint_w, value_w = _split_weights(weights, self.endpoints)
        counts = np.array([self.endpoints[ep].count for ep in names], dtype=np.float64)
        if mode == "explore":
            counts = np.sqrt(counts)
        p = counts * np.array([endpoint_w.get(ep, 1.0) for ep in names])
        if p.sum() <= 0:
            raise GenerationError("every endpoint has weight 0", expected="a positive weight")
        rng = derive_seed(seed, "endpoints")
        cdf = np.cumsum(p / p.sum())
        which = np.minimum(np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right"), len(names) - 1)
        out: list[CapturedRequest | None] = [None] * n
        for i, ep in enumerate(names):
            idx = np.flatnonzero(which == i).tolist()
            if idx:
                for j, request in zip(idx, self._endpoint_requests(ep, len(idx), seed, mode, value_w)):
                    out[j] = request
        return out  # type: ignore[return-value]

    def generate_endpoint(self, endpoint: str, n: int, seed: int, *, mode: str = "realistic",
                          weights: Weights | None = None) -> list[CapturedRequest]:
        """``n`` requests of one endpoint (what validation regenerates from)."""
        self._pick_endpoints([endpoint])
        return self._endpoint_requests(endpoint, n, seed, mode, _split_weights(weights, self.endpoints)[1])

    def _pick_endpoints(self, endpoints: list[str] | None) -> list[str]:
        if not self.endpoints:
            raise GenerationError("the model has no endpoint to generate for")
        if endpoints is None:
            return sorted(self.endpoints)
        unknown = [ep for ep in endpoints if ep not in self.endpoints]
        if unknown:
            raise GenerationError(f"no model for endpoint(s) {', '.join(unknown)}",
                                  expected="one of " + ", ".join(sorted(self.endpoints)))
        return sorted(set(endpoints))

    def _endpoint_requests(self, ep: str, n: int, seed: int, mode: str,
                           value_w: dict[str, dict[str, dict[Any, float]]]) -> list[CapturedRequest]:
        model = self.endpoints[ep]
        ctx = Context(derive_seed(seed, "values", ep, mode), mode, value_w.get(ep))
        docs = generate_node(model.root, n, ctx)
        kind = max(model.body_kind.items(), key=lambda kv: (kv[1], kv[0]))[0]
        method, template = model.method, model.template
        out = []
        for doc in docs:
            params = {k: str(v) for k, v in doc.get("path", {}).items()}
            path = template
            for key, value in params.items():
                path = path.replace("{" + key + "}", value)
            body = doc.get("body")
            out.append(CapturedRequest(
                method=method, path=path, template=template, path_params=params,
                query={k: [str(x) for x in v] for k, v in doc.get("query", {}).items()},
                headers=dict(doc.get("headers", {})), body=body,
                body_kind="none" if body is None else ("json" if not isinstance(body, str) or kind == "json"
                                                       else kind),
                source=SOURCE))
        return out

    def sessions(self, n: int, seed: int, *, max_length: int = 50, mode: str = "realistic"
                 ) -> list[list[CapturedRequest]]:
        """``n`` call sequences walking the learned Markov chain (start probabilities, observed
        transitions only, session ends as observed), each request generated for its endpoint."""
        chain = self.markov
        if not chain or not chain.get("endpoints") or sum(chain["start"]) == 0:
            raise GenerationError("the capture had no sessions of modelled endpoints to learn call "
                                  "sequences from", expected="requests with a session key")
        names: list[str] = chain["endpoints"]
        rng = derive_seed(seed, "sessions")
        start = np.asarray(chain["start"], dtype=np.float64)
        rows = np.asarray(chain["transitions"], dtype=np.float64)
        ends = np.asarray(chain["end"], dtype=np.float64)
        flows: list[list[int]] = []
        for _ in range(n):
            state = int(rng.choice(len(names), p=start / start.sum()))
            flow = [state]
            while len(flow) < max_length:
                weights = np.append(rows[state], ends[state])
                nxt = int(rng.choice(len(weights), p=weights / weights.sum()))
                if nxt == len(names):
                    break
                state = nxt
                flow.append(state)
            flows.append(flow)
        pools = {}
        need = Counter(s for flow in flows for s in flow)
        for state, count in sorted(need.items()):
            pools[state] = iter(self._endpoint_requests(names[state], count, seed, mode, {}))
        out = []
        for i, flow in enumerate(flows):
            session = []
            for step in flow:
                request = next(pools[step])
                request.session = f"generated-{seed}-{i}"
                session.append(request)
            out.append(session)
        return out

    # -- persistence ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "generator": "statistical",
                "min_samples": self.min_samples,
                "endpoints": {ep: m.to_dict() for ep, m in sorted(self.endpoints.items())},
                "skipped": self.skipped, "markov": self.markov, "training": self.training.to_dict()}

    def save(self, path: str | Path) -> Path:
        """Write the model as one JSON file (atomically) and return its path."""
        atomic_write_text(Path(path), json.dumps(self.to_dict(), separators=(",", ":")))
        return Path(path)

    @property
    def schemas(self) -> dict[str, EndpointSchema]:
        """The inferred request schema of every modelled endpoint."""
        return {ep: m.schema for ep, m in self.endpoints.items()}


def _split_weights(weights: Weights | None, endpoints: dict[str, EndpointModel]
                   ) -> tuple[dict[str, float], dict[str, dict[str, dict[Any, float]]]]:
    endpoint_w: dict[str, float] = {}
    value_w: dict[str, dict[str, dict[Any, float]]] = {}
    for key, weight in (weights or {}).items():
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight < 0:
            raise GenerationError(f"weight of {key!r} is {weight!r}", expected="a number >= 0")
        if isinstance(key, str):
            endpoint_w[key] = float(weight)
        elif isinstance(key, tuple) and len(key) == 3:
            ep, field_path, value = key
            value_w.setdefault(ep, {}).setdefault(field_path, {})[value] = float(weight)
        else:
            raise GenerationError(f"weight key {key!r} is neither an endpoint nor "
                                  "(endpoint, field, value)", expected="'POST /items' or "
                                  "('POST /items', 'body.category', 'tools')")
    unknown = sorted({k for k in endpoint_w if k not in endpoints} | {k for k in value_w if k not in endpoints})
    if unknown:
        raise GenerationError(f"weights name unknown endpoint(s) {', '.join(unknown)}",
                              expected="one of " + ", ".join(sorted(endpoints)))
    return endpoint_w, value_w


def _markov(requests: list[CapturedRequest], names: list[str]) -> dict[str, Any]:
    index = {ep: i for i, ep in enumerate(names)}
    k = len(names)
    start, end = [0] * k, [0] * k
    rows = [[0] * k for _ in range(k)]
    sessions: dict[str, list[tuple[float, int, int]]] = {}
    for order, request in enumerate(requests):
        if request.session is not None and request.endpoint in index:
            stamp = request.timestamp if request.timestamp is not None else float("-inf")
            sessions.setdefault(request.session, []).append((stamp, order, index[request.endpoint]))
    for calls in sessions.values():
        calls.sort()
        states = [s for _, _, s in calls]
        start[states[0]] += 1
        end[states[-1]] += 1
        for a, b in itertools.pairwise(states):
            rows[a][b] += 1
    return {"endpoints": names, "start": start, "transitions": rows, "end": end,
            "sessions": len(sessions)}


def learn(requests: list[CapturedRequest], *, min_samples: int = 5) -> StatisticalModel:
    """A :class:`StatisticalModel` of ``requests``: one endpoint model per endpoint with at
    least ``min_samples`` requests (the others listed in ``model.skipped`` with the reason).
    GenerationError when the capture is empty or no endpoint has enough samples."""
    if min_samples < 1:
        raise GenerationError(f"min_samples is {min_samples}", expected="at least 1")
    if not requests:
        raise GenerationError("the capture holds no requests: nothing to learn from",
                              expected="a capture with requests")
    groups = group_by_endpoint(requests)
    models: dict[str, EndpointModel] = {}
    skipped: dict[str, str] = {}
    for ep, reqs in groups.items():
        if len(reqs) < min_samples:
            skipped[ep] = (f"{len(reqs)} sample{'s' if len(reqs) != 1 else ''}, fewer than "
                           f"min_samples={min_samples}: too few to model its values")
            continue
        docs = [request_document(r) for r in reqs]
        models[ep] = EndpointModel(ep, len(reqs), learn_node(docs), dict(Counter(r.body_kind for r in reqs)),
                                   EndpointSchema.infer(reqs))
    if not models:
        listing = "; ".join(f"{ep}: {len(groups[ep])}" for ep in groups)
        raise GenerationError(f"no endpoint has at least {min_samples} samples ({listing}): a model "
                              "of so few requests would be noise", expected=f"at least {min_samples} "
                              "requests of some endpoint, or a lower min_samples")
    kept = [r for r in requests if r.endpoint in models]
    return StatisticalModel(models, skipped, _markov(requests, sorted(models)), profile(kept), min_samples)


def load_model(path: str | Path) -> StatisticalModel:
    """A model written by :meth:`StatisticalModel.save`; GenerationError naming the file when
    it is unreadable, not such a model, or from a newer version."""
    source = str(path)
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise GenerationError(f"cannot read the model: {exc}", source=source) from None
    except json.JSONDecodeError as exc:
        raise GenerationError(f"malformed JSON: {exc.msg}", source=source,
                              place=f"line {exc.lineno}, column {exc.colno}",
                              expected="a model written by `testfleet generate learn`") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise GenerationError("not a statistical model file", source=source, place="format",
                              expected=f'"format": "{FORMAT}"')
    if data.get("version") != VERSION:
        raise GenerationError(f"model version {data.get('version')!r} is not supported", source=source,
                              place="version", expected=f"version {VERSION}")
    try:
        endpoints = {ep: EndpointModel(ep, m["count"], m["root"], m["body_kind"],
                                       EndpointSchema.from_dict(m["schema"]))
                     for ep, m in data["endpoints"].items()}
        return StatisticalModel(endpoints, dict(data.get("skipped", {})), data.get("markov", {}),
                                Profile.from_dict(data["training"]), int(data.get("min_samples", 5)))
    except (KeyError, TypeError, AttributeError) as exc:
        raise GenerationError(f"the model file is incomplete ({exc!r})", source=source,
                              expected="a model written by `testfleet generate learn`") from None
