"""The one error of the mutation package: a ruleset (or a trigger in it) that cannot be used."""

from __future__ import annotations

from testfleet.errors import UsageError

__all__ = ["RulesetError"]


class RulesetError(UsageError):
    """A malformed ruleset file or trigger condition.

    ``source`` is the file, ``place`` the rule (its 1-based position and ``mutation_name``), the
    field and, for YAML, the line: ``rules.yaml [rule 2 (InputSizeVariation) field max_value,
    line 9]: must be >= min_value 100``.
    """
