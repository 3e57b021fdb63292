"""X.509 tooling for AWS IoT provisioning, built on ``cryptography``; no sockets, no ssl.

Modules: ``keys`` (key types, generation, PEM loading), ``subject`` (the subject fields JITP
reads), ``csr`` (signing requests), ``extensions`` (X.509 v3 extensions), ``ca`` (root and
intermediate CAs that issue device and verification certificates), ``inspect`` (AWS
certificate ids, PEM loading, classification), ``identity`` (a device's certificate, key and
chain), ``pem`` (PEM framing), ``pem_files`` (atomic, key-safe file writing) and ``bulk``
(fast, cached generation of many device identities).
"""

from __future__ import annotations
