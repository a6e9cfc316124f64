"""Mutation: rulesets (which parameter to vary, how, when), trigger conditions over telemetry,
operators that propose new values, and minimisation of failing variants.

Layer 4: imports model, space, configs and telemetry. Import the submodules
(:mod:`~testfleet.mutation.rules`, :mod:`~testfleet.mutation.triggers`,
:mod:`~testfleet.mutation.operators`); the names below are loaded on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "RulesetError": "errors", "Rule": "rules", "Ruleset": "rules", "VARIATION_TYPES": "rules",
    "load_ruleset": "rules", "loads_ruleset": "rules", "ruleset_from_data": "rules",
    "schema": "rules", "Trigger": "triggers", "ALIASES": "triggers", "propose": "operators",
    "MISSING": "operators",
}
__all__ = ["ALIASES", "MISSING", "VARIATION_TYPES", "Rule", "Ruleset", "RulesetError", "Trigger",
           "load_ruleset", "loads_ruleset", "propose", "ruleset_from_data", "schema"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f"testfleet.mutation.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'testfleet.mutation' has no attribute {name!r}")
