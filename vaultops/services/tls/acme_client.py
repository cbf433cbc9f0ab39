"""ACME (RFC 8555) issuance with DNS-01, on top of the `acme` library.

What this adds to the library: retries of badNonce (the library retries once)
and of rateLimited / 503 honouring Retry-After; polling with a short backoff
instead of the library's fixed one-second sleeps; one network object per
order so orders run concurrently; the account key kept 0600 and reused;
every TXT record removed whatever happens. Private keys never reach a log.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from vaultops.dns.base import DNSProvider
from vaultops.errors import AcmeError, ConfigError
from vaultops.files.atomic import atomic_write_bytes
from vaultops.retry import TimedOut, poll, retry
from vaultops.services.tls.settings import AcmeSettings, KeyType

log = logging.getLogger("vaultops.tls.acme")

USER_AGENT = "vaultops-acme"
RETRYABLE = {"badNonce": 0.0, "rateLimited": 5.0, "serverInternal": 2.0}
MAX_RETRIES = 6
MAX_RETRY_AFTER = 300.0


@dataclass(frozen=True)
class Issued:
    names: tuple[str, ...]
    key_pem: bytes = b""
    fullchain_pem: bytes = b""

    def __repr__(self) -> str:  # never show the key
        return f"Issued(names={self.names!r}, chain={len(self.fullchain_pem)} bytes)"


def retry_delay(error_code: str | None, retry_after: str | None, attempt: int) -> float | None:
    """Seconds to wait before retrying an ACME error, or None if it must not be retried."""
    if error_code not in RETRYABLE or attempt >= MAX_RETRIES:
        return None
    parsed = parse_retry_after(retry_after)
    if parsed is not None:
        return min(parsed, MAX_RETRY_AFTER)
    base = RETRYABLE[error_code]
    # badNonce: the retry fetches a fresh nonce, so waiting buys nothing.
    return 0.0 if base == 0 else min(base * 2 ** (attempt - 1), MAX_RETRY_AFTER)


def parse_retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = now or dt.datetime.now(dt.timezone.utc)
    return max(0.0, (when - now).total_seconds())


def _network_class() -> type:
    """A ClientNetwork that retries badNonce/rateLimited itself (built lazily: acme is heavy).

    Only the library's public surface: `post` is wrapped, and the last response (for its
    Retry-After) is seen through requests' response hook on the network's session."""
    from acme import client, messages

    class RetryingNetwork(client.ClientNetwork):  # type: ignore[misc]
        sleep: Callable[[float], None] = staticmethod(time.sleep)
        last_response: Any = None

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.session.hooks["response"].append(self._remember)

        def _remember(self, response: Any, *_args: Any, **_kwargs: Any) -> None:
            self.last_response = response

        def post(self, *args: Any, **kwargs: Any) -> Any:
            once = super().post
            attempt, wait = 0, None

            def final(error: BaseException) -> bool:
                nonlocal attempt, wait
                attempt += 1
                last = self.last_response
                code = error.code if isinstance(error, messages.Error) else None
                wait = retry_delay(code, last.headers.get("Retry-After") if last is not None else None, attempt)
                if wait is not None:
                    log.debug("acme %s; retry %d in %.2fs", code, attempt, wait)
                return wait is None
            # first=0: no backoff of our own; the pause is retry_delay's (Retry-After, else per error code)
            return retry(lambda: once(*args, **kwargs), on=(messages.Error,), first=0, give_up=final,
                         asked=lambda _error: wait, sleep=self.sleep)

    return RetryingNetwork


class AcmeIssuer:
    """One ACME account; `issue(names)` runs one order and may be called from several threads."""

    def __init__(self, settings: AcmeSettings, provider: DNSProvider, *,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self.provider = provider
        self._sleep = sleep
        self._lock = threading.Lock()
        self._directory: Any = None
        self._account: Any = None
        self._jwk: Any = None

    # -- account --------------------------------------------------------------
    def register(self) -> None:
        """Load or create the account key (0600) and find/create the account."""
        from acme import client, errors, messages

        with self._lock:
            if self._account is not None:
                return
            self._jwk = _load_account_key(Path(self.settings.account_key_file))
            net = self._net()
            with _acme_errors("fetch the ACME directory"):
                self._directory = client.ClientV2.get_directory(self.settings.directory, net)
            acme = client.ClientV2(self._directory, net)
            reg = messages.NewRegistration.from_data(
                email=self.settings.contact, terms_of_service_agreed=True,
                external_account_binding=self._eab())
            try:
                with _acme_errors("register the ACME account"):
                    self._account = acme.new_account(reg)
            except errors.ConflictError as conflict:  # account exists for this key: reuse it
                self._account = messages.RegistrationResource(uri=conflict.location, body=messages.Registration())

    def _eab(self) -> Any:
        from acme import messages

        if not self.settings.eab_kid:
            return None
        from vaultops.files.loader import SECRET_CAP, read_text

        hmac_key = read_text(Path(self.settings.eab_hmac_key_file or ""), cap=SECRET_CAP,
                             what="tls.acme.eab.hmac_key_file",
                             missing="put the CA's EAB HMAC key (base64url) in that file").strip()
        return messages.ExternalAccountBinding.from_data(
            account_public_key=self._jwk.public_key(), kid=self.settings.eab_kid,
            hmac_key=hmac_key, directory=self._directory)

    def _net(self) -> Any:
        import josepy as jose

        verify = self.settings.ca_bundle or _env_ca_bundle() or True
        net = _network_class()(self._jwk, alg=jose.ES256, verify_ssl=verify, user_agent=USER_AGENT, timeout=30)
        net.sleep = self._sleep
        if not any(k.lower().endswith("_proxy") for k in os.environ):
            # requests re-reads the whole environment for proxies on every request (a third of our
            # CPU per order); with no proxy configured there is nothing to find, and the CA bundle
            # it would pick from the environment is passed explicitly above.
            net.session.trust_env = False
        if self._account is not None:
            net.account = self._account
        return net

    # -- one order ------------------------------------------------------------
    def issue(self, names: tuple[str, ...]) -> Issued:
        """Order a certificate for *names*, answering DNS-01; TXT records always removed."""
        from acme import client, crypto_util

        self.register()
        key_pem = make_private_key(self.settings.key_type)
        csr = crypto_util.make_csr(key_pem, list(names))
        acme = client.ClientV2(self._directory, self._net())
        deadline = time.monotonic() + self.settings.timeout
        with _acme_errors(f"order a certificate for {', '.join(names)}"):
            order = acme.new_order(csr)
            with self.provider.records() as records:
                challenges = self._publish(order, records)
                records.wait()
                for challb in challenges:
                    acme.answer_challenge(challb, challb.chall.response(self._jwk))
                order = self._wait_ready(acme, order, deadline)
            order = self._finalize(acme, order, deadline)
        return Issued(names=names, key_pem=key_pem, fullchain_pem=order.fullchain_pem.encode())

    def _publish(self, order: Any, records: Any) -> list[Any]:
        from acme import challenges, messages

        todo = []
        for authz in order.authorizations:
            if authz.body.status == messages.STATUS_VALID:
                continue  # reused authorization: nothing to prove
            challb = next((c for c in authz.body.challenges if isinstance(c.chall, challenges.DNS01)), None)
            if challb is None:
                raise AcmeError(f"the ACME server offers no dns-01 challenge for {authz.body.identifier.value}",
                                hint="this CA/policy needs another challenge type")
            records.add(authz.body.identifier.value, challb.chall.validation(self._jwk))
            todo.append(challb)
        return todo

    def _wait_ready(self, acme: Any, order: Any, deadline: float) -> Any:
        """Poll the order, not each authorization: it turns ready once every one is valid
        (RFC 8555 7.1.6), so one round trip per poll however many names the certificate has."""
        from acme import messages

        def ready() -> Any:
            body = messages.Order.from_json(self._get(acme, order.uri).json())
            if body.status in (messages.STATUS_READY, messages.STATUS_VALID):
                return order.update(body=body)
            if body.status == messages.STATUS_INVALID:
                raise self._validation_error(acme, order)
            return None
        return self._poll(acme, ready, deadline, "authorization")

    def _validation_error(self, acme: Any, order: Any) -> AcmeError:
        from acme import messages

        for authz in order.authorizations:
            authz, _ = acme.poll(authz)
            if authz.body.status != messages.STATUS_VALID:
                return AcmeError(f"validation of {authz.body.identifier.value} failed: {_challenge_error(authz)}",
                                 hint="check the TXT record reached the servers the CA asks")
        return AcmeError(f"order {order.uri} became invalid", hint="see the CA's error; run the renewal again")

    def _finalize(self, acme: Any, order: Any, deadline: float) -> Any:
        from acme import messages

        order = acme.begin_finalization(order)

        def issued() -> Any:
            nonlocal order
            valid = order.body.status == messages.STATUS_VALID and order.body.certificate
            if not valid and order.body.status != messages.STATUS_INVALID:
                order = order.update(body=messages.Order.from_json(self._get(acme, order.uri).json()))
            if order.body.status == messages.STATUS_VALID and order.body.certificate:
                return order.update(fullchain_pem=self._get(acme, order.body.certificate).text)
            if order.body.status == messages.STATUS_INVALID:
                raise AcmeError(f"order {order.uri} became invalid: {order.body.error}",
                                hint="see the CA's error; run the renewal again")
            return None
        return self._poll(acme, issued, deadline, "finalization")

    def _get(self, acme: Any, url: str) -> Any:
        """POST-as-GET (RFC 8555 6.3): the public ClientNetwork.post with no payload.

        acme 5 has no public "fetch this order" (ClientV2 keeps its POST-as-GET helper private, and its public
        poll_finalization sleeps a fixed second). `new_nonce_url` is the keyword ClientV2 itself hands
        post, so a nonce comes from newNonce rather than a HEAD on the order URL; pinned to acme 5.x."""
        return acme.net.post(url, None, new_nonce_url=self._directory["newNonce"])

    def _poll(self, acme: Any, check: Callable[[], Any], deadline: float, what: str) -> Any:
        """Poll with a short backoff (not the library's fixed seconds); a Retry-After (<= 10 s) lengthens it."""
        def asked() -> float | None:
            last = acme.net.last_response
            hinted = parse_retry_after(last.headers.get("Retry-After")) if last is not None else None
            return None if hinted is None else min(hinted, 10.0)
        try:
            return poll(check, timeout=max(deadline - time.monotonic(), 0.0), interval=0.02, backoff=2, cap=1.0,
                        what=f"ACME {what}", tolerate=(), asked=asked, sleep=self._sleep)
        except TimedOut:
            raise AcmeError(f"ACME {what} still pending after {self.settings.timeout:g}s",
                            hint="the CA is slow; raise tls.acme.timeout or run again later") from None


def _env_ca_bundle() -> str | None:
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or None


def make_private_key(key_type: KeyType) -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    key: Any = (ec.generate_private_key(ec.SECP256R1()) if key_type is KeyType.EC256
                else rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _load_account_key(path: Path) -> Any:
    import josepy as jose
    from cryptography.hazmat.primitives import serialization

    if not path.exists():
        atomic_write_bytes(path, make_private_key(KeyType.EC256), mode=0o600)
    elif path.stat().st_mode & 0o077:
        path.chmod(0o600)  # an account key readable by others is a credential leak; tighten it
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        raise ConfigError(f"ACME account key {path} is unreadable or not a PEM private key",
                          hint="fix or remove it (a new account is then registered)") from None
    return jose.JWKEC(key=key)


def _challenge_error(authz: Any) -> str:
    for challb in authz.body.challenges:
        if challb.error is not None:
            return f"{challb.error.typ}: {challb.error.detail}"
    return f"status {authz.body.status}"


class _acme_errors:
    """Translate the acme library's and requests' exceptions into AcmeError at one place."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> Literal[False]:
        if exc is None or isinstance(exc, (AcmeError, ConfigError)):
            return False
        from acme import errors, messages
        from requests import RequestException

        if isinstance(exc, errors.ConflictError):
            return False  # handled by the caller
        if isinstance(exc, messages.Error):
            raise AcmeError(f"could not {self.what}: {exc.typ}: {exc.detail}",
                            hint="see the CA's message; rate limits and bad nonces were already retried") from exc
        if isinstance(exc, RequestException):
            raise AcmeError(f"could not {self.what}: cannot reach the ACME server: {type(exc).__name__}",
                            hint="check tls.acme.directory and tls.acme.ca_bundle") from exc
        if isinstance(exc, errors.Error):
            raise AcmeError(f"could not {self.what}: {type(exc).__name__}: {exc}",
                            hint="see the CA's message and run again") from exc
        return False
