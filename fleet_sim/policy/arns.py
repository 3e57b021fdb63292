"""ARNs of the AWS IoT resources that policies name (``client/``, ``topic/``, ``thing/`` …).

Topic names and filters go into the ARN verbatim (AWS does not escape ``+``, ``#`` or ``$``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "IotArn",
    "cert_arn",
    "client_arn",
    "iot_arn",
    "parse_arn",
    "policy_arn",
    "rolealias_arn",
    "thing_arn",
    "topic_arn",
    "topicfilter_arn",
]


def iot_arn(region: str, account_id: str, resource: str, *, partition: str = "aws") -> str:
    """``arn:<partition>:iot:<region>:<account_id>:<resource>``."""
    return f"arn:{partition}:iot:{region}:{account_id}:{resource}"


def client_arn(region: str, account_id: str, client_id: str, *, partition: str = "aws") -> str:
    """The resource of ``iot:Connect``: ``…:client/<client_id>``."""
    return iot_arn(region, account_id, f"client/{client_id}", partition=partition)


def topic_arn(region: str, account_id: str, topic: str, *, partition: str = "aws") -> str:
    """The resource of Publish, Receive, RetainPublish: ``…:topic/<topic>``."""
    return iot_arn(region, account_id, f"topic/{topic}", partition=partition)


def topicfilter_arn(
    region: str, account_id: str, topic_filter: str, *, partition: str = "aws"
) -> str:
    """The resource of ``iot:Subscribe``: ``…:topicfilter/<filter>`` (the filter as sent)."""
    return iot_arn(region, account_id, f"topicfilter/{topic_filter}", partition=partition)


def thing_arn(
    region: str,
    account_id: str,
    thing_name: str,
    shadow_name: str | None = None,
    *,
    partition: str = "aws",
) -> str:
    """``…:thing/<thing_name>``, or ``…:thing/<thing_name>/<shadow_name>`` for a named shadow."""
    resource = f"thing/{thing_name}" if shadow_name is None else f"thing/{thing_name}/{shadow_name}"
    return iot_arn(region, account_id, resource, partition=partition)


def cert_arn(region: str, account_id: str, certificate_id: str, *, partition: str = "aws") -> str:
    """``…:cert/<certificate_id>``."""
    return iot_arn(region, account_id, f"cert/{certificate_id}", partition=partition)


def policy_arn(region: str, account_id: str, policy_name: str, *, partition: str = "aws") -> str:
    """``…:policy/<policy_name>``."""
    return iot_arn(region, account_id, f"policy/{policy_name}", partition=partition)


def rolealias_arn(region: str, account_id: str, alias: str, *, partition: str = "aws") -> str:
    """``…:rolealias/<alias>`` (resource of ``iot:AssumeRoleWithCertificate``)."""
    return iot_arn(region, account_id, f"rolealias/{alias}", partition=partition)


@dataclass(frozen=True, slots=True)
class IotArn:
    """An ARN split into its six colon-separated components.

    Attributes:
        resource_type: the text before the first ``/`` of the resource (``topic``, ``client``…).
        resource_name: the rest after that ``/`` (may contain ``/`` and ``:``), or ``""``.
    """

    partition: str
    service: str
    region: str
    account_id: str
    resource_type: str
    resource_name: str


def parse_arn(arn: str) -> IotArn:
    """Split ``arn`` into components.

    Raises:
        ValueError: ``arn`` does not have the six components ``arn:p:s:r:a:resource``.
    """
    pieces = arn.split(":", 5)
    if len(pieces) != 6 or pieces[0] != "arn":
        raise ValueError(f"not an ARN: {arn!r}")
    resource_type, _, resource_name = pieces[5].partition("/")
    return IotArn(pieces[1], pieces[2], pieces[3], pieces[4], resource_type, resource_name)
