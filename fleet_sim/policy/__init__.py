"""The AWS IoT policy engine: parse policy documents and decide what a connection may do.

Pure code (no asyncio, sockets, ssl or files), shared by the emulator's broker, its
control plane (TestAuthorization) and the simulator's predictions.

* :func:`parse_policy` turns policy JSON into a validated :class:`PolicyDocument` (raising
  :class:`~fleet_sim.errors.MalformedPolicy`).
* :class:`RequestContext` holds what the gateway knows about a connection (client id, thing,
  certificate subject …) and resolves policy variables and condition keys.
* :func:`evaluate` makes one IAM-style decision (default deny, explicit Deny wins).
* :class:`ConnectionAuthorizer` caches decisions per connection for the broker's checks.
* :mod:`fleet_sim.policy.arns` builds the ARNs that policies name.
"""

from __future__ import annotations

from fleet_sim.errors import MalformedPolicy
from fleet_sim.policy.arns import (
    IotArn,
    client_arn,
    parse_arn,
    thing_arn,
    topic_arn,
    topicfilter_arn,
)
from fleet_sim.policy.authorizer import DEFAULT_CACHE_SIZE, ConnectionAuthorizer
from fleet_sim.policy.conditions import CONDITION_OPERATORS, Condition
from fleet_sim.policy.document import POLICY_VERSIONS, PolicyDocument, Statement, StatementRef
from fleet_sim.policy.evaluate import Decision, DecisionReason, evaluate
from fleet_sim.policy.glob import compile_glob, glob_match
from fleet_sim.policy.parse import MAX_POLICY_CHARACTERS, parse_policy, policy_size
from fleet_sim.policy.variables import (
    ALTERNATIVE_NAME_TYPES,
    CERTIFICATE_ATTRIBUTES,
    RequestContext,
    ThingInfo,
)

__all__ = [
    "ALTERNATIVE_NAME_TYPES",
    "CERTIFICATE_ATTRIBUTES",
    "CONDITION_OPERATORS",
    "DEFAULT_CACHE_SIZE",
    "MAX_POLICY_CHARACTERS",
    "POLICY_VERSIONS",
    "Condition",
    "ConnectionAuthorizer",
    "Decision",
    "DecisionReason",
    "IotArn",
    "MalformedPolicy",
    "PolicyDocument",
    "RequestContext",
    "Statement",
    "StatementRef",
    "ThingInfo",
    "client_arn",
    "compile_glob",
    "evaluate",
    "glob_match",
    "parse_arn",
    "parse_policy",
    "policy_size",
    "thing_arn",
    "topic_arn",
    "topicfilter_arn",
]
