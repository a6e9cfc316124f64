"""Read a SUT's Prometheus ``/metrics`` endpoint into flat ``name{labels} -> value`` pairs.

The text exposition format is parsed by ``prometheus_client``'s own parser; this module only
flattens what it returns.  Every sample keeps the name it has in the text (so a histogram gives
its ``_bucket``/``_sum``/``_count`` samples and a counter its ``_total`` one), and its labels are
rendered sorted by label name with values escaped the way the format escapes them, so that the
same series gives the same key whichever order the SUT writes its labels in.
"""

from __future__ import annotations

import math
import threading
from typing import Self

import httpx
from prometheus_client.parser import text_string_to_metric_families

from testfleet.errors import TelemetryError

__all__ = ["PrometheusProbe", "TelemetryError", "flat_name", "parse_metrics", "scrape"]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def flat_name(name: str, labels: dict[str, str]) -> str:
    """``name`` or ``name{a="1",b="2"}`` with labels sorted by name and values escaped."""
    if not labels:
        return name
    inner = ",".join(f'{key}="{_escape(labels[key])}"' for key in sorted(labels))
    return f"{name}{{{inner}}}"


def _families(text: str) -> list:
    return list(text_string_to_metric_families(text))


def _bad_line(text: str) -> tuple[int, str] | None:
    """The first sample line that the parser rejects on its own (number, text), if any."""
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            _families(stripped + "\n")
        except ValueError:
            return number, stripped
    return None


def parse_metrics(text: str, *, source: str | None = None) -> dict[str, float]:
    """Parse Prometheus text exposition format into ``{flat name: value}``.

    Raises :class:`TelemetryError` naming the offending line when the text is malformed.
    Values are floats as written (``NaN`` and ``+Inf`` included); a series written twice keeps
    its last value.
    """
    if not isinstance(text, str):
        raise TelemetryError(f"metrics text must be str, not {type(text).__name__}", source=source)
    try:
        families = _families(text)
    except ValueError as exc:  # the parser raises bare ValueErrors without the line
        bad = _bad_line(text)
        detail = f": {exc}" if str(exc) else ""
        if bad is not None:
            number, line = bad
            raise TelemetryError(f"malformed metrics line {line!r}{detail}", source=source,
                                 place=f"line {number}",
                                 expected="Prometheus text exposition format") from exc
        raise TelemetryError(f"malformed metrics text{detail}", source=source,
                             expected="Prometheus text exposition format") from exc
    out: dict[str, float] = {}
    for family in families:
        for sample in family.samples:
            out[flat_name(sample.name, dict(sample.labels))] = float(sample.value)
    return out


def scrape(url: str, timeout: float = 1.0, *, client: httpx.Client | None = None) -> dict[str, float]:
    """GET ``url`` and parse it; any HTTP or parse failure is a :class:`TelemetryError`."""
    headers = {"Accept": "text/plain;version=0.0.4"}
    try:
        if client is None:
            response = httpx.get(url, timeout=timeout, headers=headers)
        else:
            response = client.get(url, timeout=timeout, headers=headers)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise TelemetryError(f"could not scrape metrics: {exc}", source=url) from exc
    return parse_metrics(response.text, source=url)


class PrometheusProbe:
    """A sampler probe scraping one endpoint: ``{"prom.<flat name>": value}``.

    It never raises: a failed scrape returns ``{}``, adds one to :attr:`errors` and keeps the
    message in :attr:`last_error`.  Non-finite values are dropped (they cannot be summarised).
    """

    def __init__(self, url: str, timeout: float = 1.0, prefix: str = "prom") -> None:
        if not math.isfinite(timeout) or timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.url = url
        self.timeout = timeout
        self.prefix = prefix
        self.errors = 0
        self.scrapes = 0
        self.last_error: str | None = None
        self._client = httpx.Client(timeout=timeout)
        self._lock = threading.Lock()

    def __call__(self) -> dict[str, float]:
        with self._lock:
            self.scrapes += 1
            try:
                values = scrape(self.url, self.timeout, client=self._client)
            except Exception as exc:  # noqa: BLE001 - a probe must never raise in the sampler thread
                self.errors += 1
                self.last_error = str(exc)
                return {}
        return {f"{self.prefix}.{name}": value for name, value in values.items()
                if math.isfinite(value)}

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
