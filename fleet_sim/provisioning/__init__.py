"""The provisioning-template engine (pure): parse a template once, render it for each device.

Shared by RegisterThing, JITP and fleet provisioning. :func:`parse_template` validates and
compiles a template (:mod:`.template`, :mod:`.resources`, :mod:`.intrinsics`, :mod:`.values`,
:mod:`.properties`, and :mod:`.conditions`, an extension); :func:`render_template` turns it
and one device's parameters into a
:class:`ProvisioningPlan` (:mod:`.plan`), which the emulator applies to its registry
(:mod:`fleet_sim.emulator.provisioning.apply`). :mod:`.jitp` holds JITP's built-in
parameters. No I/O here.
"""

from __future__ import annotations

from fleet_sim.provisioning.jitp import CERTIFICATE_ID, JITP_PARAMETERS, jitp_parameters
from fleet_sim.provisioning.plan import (
    CertificateMethod,
    CertificateOverrides,
    CertificatePlan,
    OverrideAction,
    PolicyPlan,
    ProvisioningPlan,
    ThingOverrides,
    ThingPlan,
)
from fleet_sim.provisioning.properties import policy_hash_name
from fleet_sim.provisioning.render import render_template, resolve_parameters
from fleet_sim.provisioning.template import Parameter, ProvisioningTemplate, parse_template

__all__ = [
    "CERTIFICATE_ID",
    "JITP_PARAMETERS",
    "CertificateMethod",
    "CertificateOverrides",
    "CertificatePlan",
    "OverrideAction",
    "Parameter",
    "PolicyPlan",
    "ProvisioningPlan",
    "ProvisioningTemplate",
    "ThingOverrides",
    "ThingPlan",
    "jitp_parameters",
    "parse_template",
    "policy_hash_name",
    "render_template",
    "resolve_parameters",
]
