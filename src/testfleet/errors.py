"""testfleet's errors: one hierarchy, each carrying where the problem is and what was expected.

Every exception testfleet raises to a user is defined here and derives from
:class:`TestfleetError`; the modules that raise them import them from here (and still export
them, so ``from testfleet.snapshots.tree import SnapshotError`` keeps working)::

    TestfleetError                 the root: one message, never a traceback
    ├── UsageError                 the user must change the command, a file or a setting
    │   ├── OutputError            (also an OSError) a path that cannot be written
    │   ├── SettingsError          a malformed [tool.testfleet] table or testfleet.toml
    │   ├── ConfigError            a configuration file that cannot be read or written
    │   ├── SpaceError             a malformed parameter space
    │   │   └── UnsatisfiableError constraints no point satisfies
    │   ├── RulesetError           a malformed mutation ruleset or trigger
    │   ├── SpecError              a malformed spec file
    │   ├── PatternError           a message pattern RE2 cannot compile
    │   ├── ScenarioError          an HTTP scenario file that cannot be read
    │   │   └── OpenApiError       an OpenAPI document that cannot be imported
    │   ├── TrafficError           a traffic capture that cannot be read
    │   └── GenerationError        traffic that cannot make a model, a bad generation request
    │       └── LLMError           the language-model generators cannot do what was asked
    ├── StoreError                 the DuckDB store cannot be opened or used
    ├── WorkerError                the worker fleet could not start, or lost every worker
    ├── SnapshotError              a snapshot that cannot be saved, found, restored or trusted
    │   └── DamageError            stored data that does not match its index
    │       └── ChunkDamage        one chunk that cannot be read back as stored
    ├── TelemetryError             metrics that could not be read or scraped
    └── ScenarioFailure            an HTTP scenario whose expectations did not hold (a test
                                   failure inside a worker, not a usage error)

The CLI turns a :class:`TestfleetError` into one clear message and the exit code DESIGN.md names
(pytest's usage code 4 for ``testfleet run``, 2 for every other command); ``testfleet snapshot``
exits 1 for a :class:`DamageError` (what it checks does not hold).

Signals that never leave their module (a per-line ``Malformed`` in a traffic parser, the
``NotVectorisable`` fallback of the column evaluator, private ``_Refused``/``_OutOfBudget``) are
control flow, not errors a user sees, and stay next to the code that catches them.
"""

from __future__ import annotations


class TestfleetError(Exception):
    """Base of every error testfleet reports to a user (never a traceback)."""

    __test__ = False  # not a test class, whatever pytest's name patterns say

    def __init__(self, message: str, *, source: str | None = None, place: str | None = None,
                 expected: str | None = None) -> None:
        self.message = message
        self.source = source
        self.place = place
        self.expected = expected
        super().__init__(self.render())

    def render(self) -> str:
        where = ""
        if self.source:
            where = self.source + (f" [{self.place}]" if self.place else "") + ": "
        elif self.place:
            where = f"{self.place}: "
        text = where + self.message
        if self.expected:
            text += f" (expected {self.expected})"
        return text


class UsageError(TestfleetError):
    """A bad flag, path or setting: the user must change the command or the configuration."""


class OutputError(UsageError, OSError):
    """A file or folder testfleet was asked to write cannot be written: the path is a directory
    (or a file where a folder is wanted), its folder is missing or read-only, or the disk is full.
    Raised before any work where the path can be checked up front (:func:`atomic.check_output`),
    else by the writer, which leaves nothing half-written. It is an ``OSError`` too (with the
    cause's ``errno`` and ``strerror``), so code that handles a failed write still does."""

    def __init__(self, message: str, *, errno: int | None = None, strerror: str | None = None,
                 **where: str | None) -> None:
        super().__init__(message, **where)
        self.errno = errno
        self.strerror = strerror
        self.filename = where.get("source")

    def __str__(self) -> str:
        return self.render()


class SettingsError(UsageError):
    """A malformed ``[tool.testfleet]`` table or ``testfleet.toml``."""


class StoreError(TestfleetError):
    """The DuckDB store cannot be opened or used: unreadable, newer schema, locked, missing run."""


class WorkerError(TestfleetError):
    """The worker fleet could not be started or lost every worker."""


class ConfigError(UsageError):
    """A configuration file (YAML, JSON, TOML, INI, XML, .properties) that cannot be read or written."""


class SpaceError(UsageError):
    """A malformed parameter space: a bad dimension, constraint expression, schema or overlay."""


class UnsatisfiableError(SpaceError):
    """Constraints that no point of the space satisfies; names the constraints in conflict."""

    def __init__(self, message: str, *, conflict: list[str] | None = None, **where: str | None) -> None:
        self.conflict = list(conflict or [])
        super().__init__(message, **where)


class RulesetError(UsageError):
    """A malformed ruleset file or trigger condition.

    ``source`` is the file, ``place`` the rule (its 1-based position and ``mutation_name``), the
    field and, for YAML, the line: ``rules.yaml [rule 2 (InputSizeVariation) field max_value,
    line 9]: must be >= min_value 100``.
    """


class SpecError(UsageError):
    """A malformed spec file or spec (exit 2)."""


class PatternError(UsageError):
    """A pattern RE2 cannot compile; the text says why and what is supported."""


class ScenarioError(UsageError):
    """A scenario file that cannot be read, or a placeholder with no value."""


class OpenApiError(ScenarioError):
    """An OpenAPI document that cannot be imported: unreadable, not 3.x, or a bad reference."""


class TrafficError(UsageError):
    """A traffic capture that cannot be read: unreadable, wholly unparseable or empty."""


class GenerationError(UsageError):
    """Traffic that cannot make a model (empty, too few samples), or a bad generation request."""


class LLMError(GenerationError):
    """The language-model generators cannot do what was asked: a missing base model or extra,
    an unreachable or misbehaving endpoint, a model directory that cannot be read. A
    :class:`GenerationError`, so a :class:`UsageError` (exit code 2)."""


class SnapshotError(TestfleetError):
    """A snapshot that cannot be saved, found, restored, imported or trusted."""


class DamageError(SnapshotError):
    """Stored data that does not match its index (a damaged or missing chunk or pack)."""


class ChunkDamage(DamageError):
    """A chunk that cannot be read back as stored; ``reason`` says how. The snapshot code turns
    it into a :class:`DamageError` naming the snapshot and file before a user sees it."""

    def __init__(self, chunk_id: str, reason: str) -> None:
        self.chunk_id = chunk_id
        self.reason = reason
        super().__init__(f"chunk {chunk_id[:12]}: {reason}")


class TelemetryError(TestfleetError):
    """Metrics that could not be read: malformed exposition text or a failed scrape."""


class ScenarioFailure(TestfleetError):
    """A scenario whose expectations did not hold (the message says which step and why)."""


__all__ = [
    "ChunkDamage", "ConfigError", "DamageError", "GenerationError", "LLMError", "OpenApiError",
    "OutputError", "PatternError", "RulesetError", "ScenarioError", "ScenarioFailure",
    "SettingsError", "SnapshotError", "SpaceError", "SpecError", "StoreError", "TelemetryError",
    "TestfleetError", "TrafficError", "UnsatisfiableError", "UsageError", "WorkerError",
]
