"""AWS Lambda functions fleetsim ships as references. Each module is self-contained (standard
library and boto3 only) so it deploys to AWS Lambda unchanged, and runs locally as a rule of the
emulator's local rules engine (:mod:`fleet_sim.emulator.rules`)."""

from __future__ import annotations
