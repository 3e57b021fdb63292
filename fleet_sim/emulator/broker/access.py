"""What the broker asks about a connecting client: who it is and what it may do.

The broker is pure: it does not read the registry or parse policies. The gateway implements
:class:`AccessControl` on top of the registry and the policy engine; tests use simple fakes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated identity behind a TLS connection.

    Attributes:
        certificate_id: AWS certificate id (SHA-256 of the DER), the ``principalIdentifier``.
        active: whether the certificate (and its CA) may connect at all.
        certificate_der: the client certificate, for policy variables (subject, issuer …).
    """

    certificate_id: str
    active: bool = True
    certificate_der: bytes | None = field(default=None, repr=False)


class Authorizer(Protocol):
    """Policy decisions for one connection (cached by the implementation)."""

    def can_connect(self) -> bool:
        """``iot:Connect`` on ``client/<clientId>``."""
        ...

    def can_publish(self, topic: str) -> bool:
        """``iot:Publish`` on ``topic/<topic>``."""
        ...

    def can_retain_publish(self, topic: str) -> bool:
        """``iot:RetainPublish`` on ``topic/<topic>``."""
        ...

    def can_subscribe(self, topic_filter: str) -> bool:
        """``iot:Subscribe`` on ``topicfilter/<filter>`` (the literal filter)."""
        ...

    def can_receive(self, topic: str) -> bool:
        """``iot:Receive`` on ``topic/<topic>``, checked per delivery."""
        ...


class AccessControl(Protocol):
    """Builds the :class:`Authorizer` for a connection once its CONNECT is known."""

    def authorizer(
        self,
        principal: Principal,
        *,
        client_id: str,
        source_ip: str,
        persistent: bool,
        will_topic: str | None,
    ) -> Authorizer:
        """Policy decisions for ``principal`` connecting as ``client_id``."""
        ...


class AllowAll:
    """An authorizer that allows everything (tests, and brokers with authorization off)."""

    def can_connect(self) -> bool:
        """Always allowed."""
        return True

    def can_publish(self, topic: str) -> bool:
        """Always allowed."""
        return True

    def can_retain_publish(self, topic: str) -> bool:
        """Always allowed."""
        return True

    def can_subscribe(self, topic_filter: str) -> bool:
        """Always allowed."""
        return True

    def can_receive(self, topic: str) -> bool:
        """Always allowed."""
        return True


class AllowAllAccess:
    """Access control that lets every principal do everything."""

    def authorizer(
        self,
        principal: Principal,
        *,
        client_id: str,
        source_ip: str,
        persistent: bool,
        will_topic: str | None,
    ) -> Authorizer:
        """An :class:`AllowAll`."""
        return AllowAll()
