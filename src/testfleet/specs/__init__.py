"""Behaviour specifications: given a configuration, when a case runs, then this outcome."""

from testfleet.specs.check import HOLDS, UNTESTED, VIOLATED, ResultTable, Verdict, check
from testfleet.specs.language import Spec, SpecError, load_specs, spec_from_dict, specs
from testfleet.specs.lint import Finding, lint

__all__ = ["HOLDS", "UNTESTED", "VIOLATED", "Finding", "ResultTable", "Spec", "SpecError",
           "Verdict", "check", "lint", "load_specs", "spec_from_dict", "specs"]
