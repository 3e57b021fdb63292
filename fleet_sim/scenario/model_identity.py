"""How each device gets its identity: the provisioning methods.

=================  ==========================================================================
``preregistered``  fleetsim registers each thing and its certificate before the run (or uses
                   existing ``<thing_name>.pem``/``.key`` files from ``identities_dir``)
``jitp``           just-in-time provisioning: certificates signed by ``ca``, whose template
                   creates the thing on first connect (the first connect is expected to drop)
``jitr``           just-in-time registration: as JITP, but someone activates the certificate
                   on the registration event (fleetsim itself, or an external Lambda)
``claim``          fleet provisioning by claim over MQTT: a claim certificate, then
                   CreateCertificateFromCsr (or CreateKeysAndCertificate) and RegisterThing
                   with ``template_name``
``cvm``            a certificate vending machine at ``url`` hands out keys and certificates
=================  ==========================================================================

``provisioning: preregistered`` is shorthand for ``{type: preregistered}``. Certificates are
given as ``generate`` (fleetsim makes them) or as files: ``{cert: ca.pem, key: ca.key}``, or
just the certificate's path when the key sits next to it with the ``.key`` suffix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Discriminator, Field, PlainSerializer, Tag

from fleet_sim.scenario.model_base import AlsoAccepts, FrozenModel
from fleet_sim.scenario.model_types import InputDir, InputFile, ParameterTemplate, frozen_mapping
from fleet_sim.scenario.templates import FILTER_FIELDS, compile_template

__all__ = [
    "METHODS",
    "CertificateFiles",
    "CertificateSource",
    "ClaimProvisioning",
    "CvmProvisioning",
    "JitpProvisioning",
    "JitrProvisioning",
    "PreregisteredProvisioning",
    "Provisioning",
]

#: The provisioning methods, as written in ``type``.
METHODS = ("preregistered", "jitp", "jitr", "claim", "cvm")


class CertificateFiles(FrozenModel):
    """A certificate and its private key, as PEM files."""

    cert: InputFile = Field(description="The certificate (PEM), optionally with its chain.")
    key: InputFile | None = Field(
        default=None, description="Its private key (PEM); default the cert's name with .key."
    )

    @property
    def key_file(self) -> InputFile:
        """The key file: ``key``, or the certificate's path with the ``.key`` suffix."""
        return self.key if self.key is not None else self.cert.with_suffix(".key")


def _certificate_tag(value: Any) -> str | None:
    if value == "generate":
        return "generate"
    if isinstance(value, dict | CertificateFiles):
        return "files"
    return None


def _certificate_shorthand(value: Any) -> Any:
    if isinstance(value, str) and value != "generate":
        return {"cert": value}
    return value


CertificateSource = Annotated[
    Annotated[Literal["generate"], Tag("generate")] | Annotated[CertificateFiles, Tag("files")],
    Discriminator(
        _certificate_tag,
        custom_error_type="certificate_source",
        custom_error_message="must be 'generate', a certificate path, or {cert: ..., key: ...}",
    ),
    BeforeValidator(_certificate_shorthand),
    AlsoAccepts({"type": "string", "description": "'generate' or the certificate's path."}),
]
"""``"generate"`` (fleetsim creates it) or certificate and key files."""


class PreregisteredProvisioning(FrozenModel):
    """Things and certificates registered before the run."""

    type: Literal["preregistered"] = "preregistered"
    identities_dir: InputDir | None = Field(
        default=None,
        description="Existing <thing_name>.pem/.key files; default fleetsim creates them.",
    )


class JitpProvisioning(FrozenModel):
    """Just-in-time provisioning by a template attached to the CA."""

    type: Literal["jitp"] = "jitp"
    ca: CertificateSource = Field(
        description="The CA that signs device certificates: 'generate' or its cert/key files."
    )
    template: InputFile | None = Field(
        default=None,
        description="JITP template body (JSON); default fleetsim's (thing named by the CN).",
    )
    role_arn: str | None = Field(
        default=None,
        pattern=r"^arn:aws[a-zA-Z-]*:iam::\d{12}:role/\S+$",
        description="Provisioning role for AWS (needs AWSIoTThingsRegistration).",
    )


class JitrProvisioning(FrozenModel):
    """Just-in-time registration: the certificate is activated on its registration event."""

    type: Literal["jitr"] = "jitr"
    ca: CertificateSource = Field(
        description="The CA that signs device certificates: 'generate' or its cert/key files."
    )
    activator: Literal["fleetsim", "external"] = Field(
        default="fleetsim",
        description="Who activates new certificates: fleetsim, or an external Lambda.",
    )


_DEFAULT_PARAMETERS: Mapping[str, Any] = frozen_mapping(
    {
        "SerialNumber": compile_template(
            "{thing_name}", allowed=FILTER_FIELDS, generators=False, what="parameter"
        )
    }
)


class ClaimProvisioning(FrozenModel):
    """Fleet provisioning by claim (MQTT API)."""

    type: Literal["claim"] = "claim"
    template_name: str = Field(
        pattern=r"^[0-9A-Za-z_-]{1,36}$",
        description="The fleet provisioning template RegisterThing uses.",
    )
    claim_certificate: CertificateSource = Field(
        description="The shared claim certificate: 'generate' or its cert/key files."
    )
    use_csr: bool = Field(
        default=True,
        description="CreateCertificateFromCsr with the device's key (else AWS makes the key).",
    )
    payload_format: Literal["json", "cbor"] = Field(
        default="json", description="Payload encoding of the provisioning topics."
    )
    parameters: Annotated[
        Mapping[str, ParameterTemplate],
        AfterValidator(frozen_mapping),
        PlainSerializer(lambda mapping: {key: str(value) for key, value in mapping.items()}),
    ] = Field(
        default_factory=lambda: _DEFAULT_PARAMETERS,
        description="RegisterThing parameters; values are templates ({thing_name} …).",
    )


class CvmProvisioning(FrozenModel):
    """A certificate vending machine (``GET <url>?serialNumber=…&deviceToken=…``)."""

    type: Literal["cvm"] = "cvm"
    url: str = Field(pattern=r"^https?://\S+$", description="The CVM's getcert URL.")
    serial_number: ParameterTemplate = Field(
        default=compile_template(
            "{thing_name}", allowed=FILTER_FIELDS, generators=False, what="parameter"
        ),
        description="Each device's serialNumber (a template).",
    )
    token: str = Field(
        min_length=1, description="The deviceToken the CVM checks; write ${ENV} to keep it out."
    )


def _method_shorthand(value: Any) -> Any:
    if isinstance(value, str):
        return {"type": value}
    return value


Provisioning = Annotated[
    PreregisteredProvisioning
    | JitpProvisioning
    | JitrProvisioning
    | ClaimProvisioning
    | CvmProvisioning,
    Field(discriminator="type"),
    BeforeValidator(_method_shorthand),
    AlsoAccepts({"const": "preregistered", "description": "Short for {type: preregistered}."}),
]
"""How a device obtains its identity."""
