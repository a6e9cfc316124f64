"""testfleet's errors: one hierarchy, each carrying where the problem is and what was expected.

The CLI turns a :class:`TestfleetError` into one clear message and the exit code DESIGN.md names
(pytest's usage code 4 for ``testfleet run``, 2 for every other command).
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
