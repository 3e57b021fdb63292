"""The emulator's local rules engine: topic filters routed to Lambda-style Python handlers
(:mod:`.engine`), with AWS Lambda's ``context`` object (:mod:`.context`)."""

from __future__ import annotations

from fleet_sim.emulator.rules.context import LambdaContext
from fleet_sim.emulator.rules.engine import Handler, LocalRule, LocalRules, RuleStats

__all__ = ["Handler", "LambdaContext", "LocalRule", "LocalRules", "RuleStats"]
