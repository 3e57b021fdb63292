"""The local AWS IoT Core emulator, assembled: ``async with Emulator(config) as emulator``.

Composes the registry (SQLite under the data dir), the emulator's PKI, the gateway's TLS
context with its live trust store, the broker, and the registry-backed authentication and
policy checks, just-in-time registration and provisioning (JITR/JITP) and the local rules
engine; wires registry changes to the data plane (a certificate leaving ACTIVE drops
its connections; a newly registered CA or CA-less certificate is trusted at once); and
writes ``endpoint.json`` once the listeners are up.

What is emulated and what is not is listed in ``docs/emulator.md``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TypeVar

from cryptography import x509

from fleet_sim.clock import Clock, LoopClock
from fleet_sim.emulator.broker.broker import Broker
from fleet_sim.emulator.config import EmulatorConfig
from fleet_sim.emulator.control_plane import ControlPlaneServer, HandlerContext, OperationThrottle
from fleet_sim.emulator.gateway.registry_access import (
    AutoRegistration,
    RegistryAccess,
    RegistryAuthenticator,
)
from fleet_sim.emulator.gateway.server import Gateway
from fleet_sim.emulator.gateway.tls_context import GatewayTls
from fleet_sim.emulator.pki import EmulatorPki
from fleet_sim.emulator.provisioning.auto_registration import AutoRegistrationService
from fleet_sim.emulator.provisioning.fleet import (
    FleetProvisioningService,
    fleet_provisioning_service,
)
from fleet_sim.emulator.registry.events import (
    CACertificateChanged,
    CertificateStatusChanged,
    PolicyChanged,
    RegistryEvent,
)
from fleet_sim.emulator.registry.models import Certificate, CertificateStatus, Page
from fleet_sim.emulator.registry.registry import Registry
from fleet_sim.emulator.rules.engine import LocalRules
from fleet_sim.tls.inspect import is_issued_by

logger = logging.getLogger(__name__)

#: How often offline sessions are checked for expiry and other processes' changes polled.
HOUSEKEEPING_INTERVAL_S = 2.0


@dataclass(frozen=True, slots=True)
class EndpointInfo:
    """What clients need to reach a running emulator (the ready line and ``endpoint.json``)."""

    endpoint: str
    host: str
    port: int
    alpn_port: int | None
    ca_file: str
    region: str
    account_id: str
    data_dir: str
    control_plane_url: str | None = None

    def to_json(self) -> str:
        """One line of JSON."""
        return json.dumps(asdict(self), separators=(",", ":"))


class Emulator:
    """A running local AWS IoT Core: gateway, broker and registry."""

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        auto_registration: AutoRegistration | None = None,
    ) -> None:
        self.config = config if config is not None else EmulatorConfig()
        self.clock: Clock = clock if clock is not None else LoopClock()
        self._rng = rng if rng is not None else random.Random()
        self._auto_registration = auto_registration
        self._gateway: Gateway | None = None
        self._registry: Registry | None = None
        self._broker: Broker | None = None
        self._pki: EmulatorPki | None = None
        self._tls: GatewayTls | None = None
        self._info: EndpointInfo | None = None
        self._control_plane: ControlPlaneServer | None = None
        self._housekeeping: asyncio.TimerHandle | None = None
        self._jit: AutoRegistrationService | None = None
        self._rules: LocalRules | None = None
        self._fleet: FleetProvisioningService | None = None
        self._unsubscribe: list[object] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0

    # ------------------------------------------------------------------ facts

    @property
    def info(self) -> EndpointInfo:
        """Where the emulator listens (available once started)."""
        assert self._info is not None, "the emulator is not running"
        return self._info

    @property
    def registry(self) -> Registry:
        """The registry (the in-process management API)."""
        assert self._registry is not None, "the emulator is not running"
        return self._registry

    @property
    def broker(self) -> Broker:
        """The message broker."""
        assert self._broker is not None, "the emulator is not running"
        return self._broker

    @property
    def fleet_provisioning(self) -> FleetProvisioningService:
        """The fleet-provisioning MQTT service (its ownership tokens and counters)."""
        assert self._fleet is not None, "the emulator is not running"
        return self._fleet

    @property
    def auto_registration(self) -> AutoRegistrationService:
        """The built-in JITP/JITR service (its counters and recent JITP attempts); absent
        when a custom ``auto_registration`` hook was passed to the constructor."""
        assert self._jit is not None, "the emulator is not running or has a custom hook"
        return self._jit

    @property
    def rules(self) -> LocalRules:
        """The local rules engine: ``emulator.rules.add_rule(filter, handler, name=...)``."""
        assert self._rules is not None, "the emulator is not running"
        return self._rules

    @property
    def gateway(self) -> Gateway:
        """The TLS gateway."""
        assert self._gateway is not None, "the emulator is not running"
        return self._gateway

    @property
    def pki(self) -> EmulatorPki:
        """The emulator's root CA, server certificate and device-issuing CA."""
        assert self._pki is not None, "the emulator is not running"
        return self._pki

    @property
    def tls(self) -> GatewayTls:
        """The gateway's TLS context and trust store."""
        assert self._tls is not None, "the emulator is not running"
        return self._tls

    @property
    def control_plane_url(self) -> str | None:
        """``http://host:port`` of the AWS IoT control-plane API, None when it is off."""
        return self.info.control_plane_url

    def boto3_client(self, **client_kwargs: Any) -> Any:
        """A ready ``boto3`` AWS IoT client for the control plane: dummy credentials (the
        emulator accepts any signature), the emulator's region, ``endpoint_url`` set.

        Its calls block until the emulator's loop answers them, so call it from another
        thread than the loop's (e.g. ``asyncio.to_thread``). ``client_kwargs`` go to
        ``boto3.client`` (e.g. ``config=botocore.config.Config(...)``).
        """
        import boto3  # only callers asking for a client pay for importing boto3

        url = self.control_plane_url
        assert url is not None, "the control plane is off (control_plane_port=None)"
        return boto3.client(
            "iot",
            endpoint_url=url,
            region_name=self.config.region,
            aws_access_key_id="fleetsim-emulator",
            aws_secret_access_key="fleetsim-emulator",  # noqa: S106 - a dummy, never checked
            **client_kwargs,
        )

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> EndpointInfo:
        """Open the registry, load the PKI, start listening; returns the endpoint facts."""
        config = self.config
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        pki, registry = await asyncio.to_thread(self._open_state)
        tls = GatewayTls(pki, require_sni=config.require_sni)
        self._pki, self._registry, self._tls = pki, registry, tls
        self._trust_registered()
        access = RegistryAccess(registry, clock=self.clock)
        self._access = access
        broker = Broker(
            access=access,
            clock=self.clock,
            new_session_id=lambda: str(uuid.UUID(int=self._rng.getrandbits(128), version=4)),
            limits=config.limits,
            subscribe_denial=config.subscribe_denial,
            publish_denial=config.publish_denial,
            lifecycle_events=config.lifecycle_events,
        )
        self._broker = broker
        self._fleet = fleet_provisioning_service(
            HandlerContext(
                registry=registry,
                device_ca=pki.device_ca,
                endpoint=config.endpoint,
                clock=self.clock,
            ),
            config,
            loop=asyncio.get_running_loop(),
            random_bytes=self._rng.randbytes,
        )
        broker.services.append(self._fleet)
        self._rules = LocalRules(
            broker,
            clock=self.clock,
            region=config.region,
            account_id=config.account_id,
            rng=random.Random(self._rng.getrandbits(64)),
        )
        if self._auto_registration is None:
            self._jit = AutoRegistrationService(
                registry,
                broker,
                clock=self.clock,
                rng=random.Random(self._rng.getrandbits(64)),
                config=config.auto_registration,
            )
        self._unsubscribe.append(registry.subscribe(self._on_registry_event))
        gateway = Gateway(
            config=config,
            tls=tls,
            broker=broker,
            authenticator=RegistryAuthenticator(
                registry, auto_registration=self._auto_registration or self._jit
            ),
        )
        self._gateway = gateway
        bound = await gateway.start()
        try:
            control_plane_url = await self._start_control_plane(pki, registry)
        except BaseException:  # e.g. its port is taken: do not leave the gateway running
            await self.close()
            raise
        self._info = EndpointInfo(
            endpoint=config.endpoint,
            host=bound[0][0],
            port=bound[0][1],
            alpn_port=bound[1][1] if len(bound) > 1 else None,
            ca_file=str(pki.root_ca_file),
            region=config.region,
            account_id=config.account_id,
            data_dir=str(pki.directory.parent),
            control_plane_url=control_plane_url,
        )
        await asyncio.to_thread(self._write_endpoint_file, self._info)
        self._schedule_housekeeping()
        logger.info("emulator listening on %s:%s", self._info.host, self._info.port)
        return self._info

    async def _start_control_plane(self, pki: EmulatorPki, registry: Registry) -> str | None:
        config = self.config
        if config.control_plane_port is None:
            return None
        context = HandlerContext(
            registry=registry, device_ca=pki.device_ca, endpoint=config.endpoint, clock=self.clock
        )
        server = ControlPlaneServer(
            context,
            host=config.host,
            port=config.control_plane_port,
            throttle=OperationThrottle() if config.throttle_control_plane else None,
        )
        self._control_plane = server
        return await server.start()

    def _open_state(self) -> tuple[EmulatorPki, Registry]:
        config = self.config
        data_dir = Path(config.data_dir).resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        now = datetime.fromtimestamp(self.clock.wall(), tz=UTC)
        pki = EmulatorPki.load_or_create(data_dir / "pki", endpoint=config.endpoint, now=now)
        registry = Registry.open(
            data_dir / "registry.sqlite3",
            region=config.region,
            account_id=config.account_id,
            random_bytes=self._rng.randbytes,
        )
        return pki, registry

    @staticmethod
    def _write_endpoint_file(info: EndpointInfo) -> None:
        path = Path(info.data_dir) / "endpoint.json"
        temporary = path.with_suffix(".json.tmp")
        temporary.write_text(info.to_json() + "\n", encoding="utf-8")
        temporary.replace(path)

    async def close(self) -> None:
        """Stop listening, drop every connection, close the registry."""
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            self._housekeeping = None
        if self._rules is not None:  # first: running handlers may still call the control plane
            await self._rules.close()
        if self._jit is not None:
            await self._jit.close()
        if self._control_plane is not None:
            await self._control_plane.close()
            self._control_plane = None
        if self._gateway is not None:
            await self._gateway.close()
            self._gateway = None
        for unsubscribe in self._unsubscribe:
            if callable(unsubscribe):
                unsubscribe()
        self._unsubscribe.clear()
        if self._registry is not None:
            self._registry.close()
            self._registry = None

    # ------------------------------------------------------------------ registry → data plane

    def _trust_registered(self) -> None:
        registry, tls = self.registry, self.tls
        for ca in _all_pages(registry.cas.list):
            tls.trust(x509.load_pem_x509_certificate(ca.pem.encode()))
        for cert in _all_pages(registry.certificates.list):
            if cert.ca_certificate_id is None:
                self._trust_leaf(cert.pem)

    def _trust_leaf(self, pem: str) -> None:
        """Trust a certificate recorded without a CA, unless the emulator's device CA issued
        it (CreateKeysAndCertificate, fleet provisioning): that CA is trusted already, and
        every entry added to a live OpenSSL store makes the next insert slower (an O(store)
        insert: thousands of issued certificates would cost milliseconds each)."""
        cert = x509.load_pem_x509_certificate(pem.encode())
        if not is_issued_by(cert, self.pki.device_ca.certificate):
            self.tls.trust(cert)

    def _on_registry_event(self, event: RegistryEvent) -> None:
        # Registry changes may come from any thread (a control-plane worker, a test); the
        # broker and the TLS store belong to the loop's thread.
        loop = self._loop
        if loop is None:
            return
        if threading.get_ident() == self._loop_thread:
            self._apply_registry_event(event)
        else:
            loop.call_soon_threadsafe(self._apply_registry_event, event)

    def _apply_registry_event(self, event: RegistryEvent) -> None:
        if self._broker is None:
            return
        if isinstance(event, CertificateStatusChanged):
            if event.old_status == CertificateStatus.ACTIVE and event.new_status != "ACTIVE":
                self.broker.disconnect_certificate(event.certificate_id)
            if event.old_status is None and event.new_status is not None:
                record = self.registry.certificate_by_id(event.certificate_id)
                if record is not None and record.ca_certificate_id is None:
                    self._trust_leaf(record.pem)
        elif isinstance(event, CACertificateChanged):
            ca = self.registry.ca_by_id(event.ca_certificate_id)
            if ca is not None:
                self.tls.trust(x509.load_pem_x509_certificate(ca.pem.encode()))
            if event.old_status == "ACTIVE" and event.new_status != "ACTIVE":
                self._drop_certificates_of_ca(event.ca_certificate_id)
        elif isinstance(event, PolicyChanged):
            self._access.forget_policy(event.policy_name)

    def _drop_certificates_of_ca(self, ca_certificate_id: str) -> None:
        def listing(*, marker: str | None, page_size: int) -> Page[Certificate]:
            return self.registry.certificates.list_by_ca(
                ca_certificate_id, marker=marker, page_size=page_size
            )

        for cert in _all_pages(listing):
            self.broker.disconnect_certificate(cert.certificate_id)

    def _schedule_housekeeping(self) -> None:
        loop = asyncio.get_running_loop()
        self._housekeeping = loop.call_later(HOUSEKEEPING_INTERVAL_S, self._housekeep)

    def _housekeep(self) -> None:
        try:
            self.broker.expire_sessions()
            if self._fleet is not None:
                self._fleet.expire_tokens()
            self.registry.poll_changes()
        except Exception:  # housekeeping must never stop
            logger.exception("emulator housekeeping failed")
        self._schedule_housekeeping()


_T = TypeVar("_T")


class _Lister(Protocol[_T]):
    def __call__(self, *, marker: str | None, page_size: int) -> Page[_T]: ...


def _all_pages(lister: _Lister[_T]) -> Iterator[_T]:
    marker: str | None = None
    while True:
        page = lister(marker=marker, page_size=250)
        yield from page.items
        marker = page.next_marker
        if marker is None:
            return
