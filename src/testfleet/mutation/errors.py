"""The one error of the mutation package: a ruleset (or a trigger in it) that cannot be used.

Defined with every other error in :mod:`testfleet.errors`; imported here so that
``from testfleet.mutation.errors import RulesetError`` keeps working.
"""

from __future__ import annotations

from testfleet.errors import RulesetError

__all__ = ["RulesetError"]
