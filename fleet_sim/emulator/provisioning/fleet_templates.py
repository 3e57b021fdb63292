"""The templates fleet provisioning's RegisterThing uses: looked up by name, checked, parsed
once per version, and rendered for one device's certificate.

A template RegisterThing can use is a FLEET_PROVISIONING one (another type, or none, is 404
``ResourceNotFound``), enabled (else 403 ``AccessDenied``), whose default version parses and
names its certificate with ``CertificateId`` (else 400 ``InvalidParameters``) [codes:
inference, see :mod:`.fleet_api`]. Rendering adds ``AWS::IoT::Certificate::Id`` = the
ownership token's certificate after the device's parameters, so a device cannot name
another certificate; a template that then does not resolve its certificate to that id, is
missing a parameter, or whose functions fail is 400 ``InvalidParameters``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fleet_sim.emulator.provisioning.fleet_api import ErrorCode
from fleet_sim.emulator.registry.models import ProvisioningTemplate, TemplateType
from fleet_sim.emulator.registry.registry import Registry
from fleet_sim.errors import TemplateError
from fleet_sim.provisioning.jitp import CERTIFICATE_ID
from fleet_sim.provisioning.plan import CertificateMethod, ProvisioningPlan
from fleet_sim.provisioning.render import render_template
from fleet_sim.provisioning.template import ProvisioningTemplate as ParsedTemplate
from fleet_sim.provisioning.template import parse_template

#: What a fleet template's certificate resource must say (reference §3.3).
CERTIFICATE_RESOURCE = f'{{"CertificateId": {{"Ref": "{CERTIFICATE_ID}"}}}}'

#: Parsed template versions kept; older ones are parsed again when needed.
DEFAULT_CACHE_SIZE = 64


@dataclass(frozen=True, slots=True)
class FleetTemplate:
    """A usable fleet template: its registry record and its parsed default version."""

    record: ProvisioningTemplate
    parsed: ParsedTemplate

    def render(self, parameters: Mapping[str, str], certificate_id: str) -> ProvisioningPlan:
        """The plan for the device owning ``certificate_id``.

        Raises:
            FleetProvisioningRejected: InvalidParameters.
        """
        values = {**parameters, CERTIFICATE_ID: certificate_id}
        try:
            plan = render_template(self.parsed, values)
        except TemplateError as error:
            raise ErrorCode.INVALID_PARAMETERS.error(error.message) from None
        if plan.certificate is None or plan.certificate.certificate_id != certificate_id:
            raise ErrorCode.INVALID_PARAMETERS.error(
                f"template {self.record.name!r}: the certificate resource must be "
                f"{CERTIFICATE_RESOURCE}"
            )
        return plan


class FleetTemplates:
    """Looks fleet templates up in the registry and keeps their parsed versions."""

    def __init__(self, registry: Registry, *, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        self._registry = registry
        self._cache_size = cache_size
        self._parsed: dict[tuple[str, int, str], ParsedTemplate] = {}

    def usable(self, name: str) -> FleetTemplate:
        """The enabled FLEET_PROVISIONING template called ``name``.

        Raises:
            FleetProvisioningRejected: ResourceNotFound, AccessDenied or InvalidParameters.
        """
        record = self._registry.templates.get(name)
        if record is None or record.type is not TemplateType.FLEET_PROVISIONING:
            raise ErrorCode.NOT_FOUND.error(
                f"The fleet provisioning template {name} does not exist"
            )
        if not record.enabled:
            raise ErrorCode.ACCESS_DENIED.error(f"The provisioning template {name} is disabled")
        return FleetTemplate(record, self._parse(record))

    def _parse(self, record: ProvisioningTemplate) -> ParsedTemplate:
        key = (record.name, record.default_version_id, record.body)
        parsed = self._parsed.get(key)
        if parsed is not None:
            return parsed
        try:
            parsed = parse_template(record.body, name=record.name)
        except TemplateError as error:
            raise ErrorCode.INVALID_PARAMETERS.error(error.message) from None
        if parsed.certificate_method is not CertificateMethod.CERTIFICATE_ID:
            raise ErrorCode.INVALID_PARAMETERS.error(
                f"template {record.name!r}: a fleet provisioning template's certificate "
                f"resource must be {CERTIFICATE_RESOURCE}"
            )
        if len(self._parsed) >= self._cache_size:
            self._parsed.pop(next(iter(self._parsed)))
        self._parsed[key] = parsed
        return parsed
