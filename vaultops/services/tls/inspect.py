"""Certificates as values: parse PEM, fetch what a node serves by a TLS handshake with SNI."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

from vaultops.errors import AcmeError
from vaultops.retry import TimedOut, poll

HANDSHAKE_TIMEOUT = 5.0


class TLSError(AcmeError):
    """Inspecting, installing, reloading or verifying a node certificate failed."""


@dataclass(frozen=True)
class CertInfo:
    subject: str
    sans: tuple[str, ...]
    issuer: str
    not_before: dt.datetime
    not_after: dt.datetime
    fingerprint: str   # sha256 hex of the DER

    def days_left(self, now: dt.datetime | None = None) -> float:
        now = now or dt.datetime.now(dt.timezone.utc)
        return (self.not_after - now).total_seconds() / 86400

    def renewal_due(self, fraction: float, now: dt.datetime | None = None) -> bool:
        """True inside the last *fraction* of the lifetime."""
        now = now or dt.datetime.now(dt.timezone.utc)
        lifetime = self.not_after - self.not_before
        return now >= self.not_after - lifetime * fraction

    def as_dict(self, now: dt.datetime | None = None) -> dict[str, object]:
        return {"subject": self.subject, "sans": list(self.sans), "issuer": self.issuer,
                "not_after": self.not_after.isoformat(), "days_left": round(self.days_left(now), 2),
                "fingerprint": self.fingerprint}


def cert_info(data: bytes) -> CertInfo:
    """The first certificate of a PEM chain or a DER certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    try:
        cert = x509.load_pem_x509_certificate(data) if b"-----BEGIN" in data else x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise TLSError(f"not a certificate: {exc}", hint="check the file holds a PEM certificate chain") from None
    try:
        sans = tuple(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
                     .value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        sans = ()
    return CertInfo(subject=cert.subject.rfc4514_string(), sans=sans, issuer=cert.issuer.rfc4514_string(),
                    not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc,
                    fingerprint=cert.fingerprint(hashes.SHA256()).hex())


def key_matches_cert(key_pem: bytes, chain_pem: bytes) -> bool:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
        cert = x509.load_pem_x509_certificate(chain_pem)
    except (ValueError, TypeError):
        return False
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    return key.public_key().public_bytes(enc, fmt) == cert.public_key().public_bytes(enc, fmt)


def served_cert(host: str, port: int, server_name: str, *, timeout: float = HANDSHAKE_TIMEOUT) -> CertInfo:
    """The leaf a node serves for SNI *server_name* (no trust decision: for status)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return cert_info(_handshake(ctx, host, port, server_name, timeout))


def verify_served(host: str, port: int, server_name: str, ca_file: str, *,
                  timeout: float = HANDSHAKE_TIMEOUT) -> CertInfo:
    """Handshake that must verify the served chain against *ca_file* and the name."""
    # With cafile given, create_default_context trusts only that file (not the system store).
    ctx = ssl.create_default_context(cafile=ca_file)
    return cert_info(_handshake(ctx, host, port, server_name, timeout))


def _handshake(ctx: ssl.SSLContext, host: str, port: int, server_name: str, timeout: float) -> bytes:
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock, \
                ctx.wrap_socket(sock, server_hostname=server_name) as tls:
            der = tls.getpeercert(binary_form=True)
    except ssl.SSLCertVerificationError as exc:
        raise TLSError(f"{server_name} at {host}:{port}: served chain does not verify: {exc.verify_message}",
                       hint="the node serves a certificate not issued for this name/CA") from None
    except (OSError, ssl.SSLError) as exc:
        raise TLSError(f"{server_name} at {host}:{port}: TLS handshake failed: {exc}",
                       hint="is the node up and listening with TLS?") from None
    if not der:
        raise TLSError(f"{server_name} at {host}:{port}: no certificate served", hint="check the listener")
    return der


def wait_served(fetch: Callable[[], CertInfo], fingerprint: str, *, timeout: float,
                sleep: Callable[[float], None] = time.sleep,
                clock: Callable[[], float] = time.monotonic) -> CertInfo | None:
    """Poll until the served certificate has *fingerprint*; the last one seen if it never does."""
    last: CertInfo | None = None

    def served() -> CertInfo | None:
        nonlocal last
        try:
            last = fetch()
        except TLSError:
            last = None
        return last if last is not None and last.fingerprint == fingerprint else None
    try:
        return poll(served, timeout=timeout, interval=0.005, backoff=2, cap=0.5, what="the new certificate",
                    tolerate=(), clock=clock, sleep=sleep)
    except TimedOut:
        return last
