"""Root-token generation from unseal shares (sys/generate-root/*), OTP or PGP.

The OTP is made here, kept in memory only, and used once to decode the
token: the server returns `encoded_token` = unpadded base64 of (token XOR
OTP). Every share is checked against the keyholder manifest before it is
sent. The decoded token is handed to the caller to show once; vaultops never
stores it, and revoke() ends it (`--revoke-after`).

OpenBao >= 2.5.3 disables the unauthenticated sys/generate-root/* endpoints by
default (they answer 405 "unsupported operation") and offers no
share-authenticated replacement: its documented alternative is creating a
root token from a sudo token (`bao token create -policy=root`). A ceremony
there needs `disable_unauthed_generate_root_endpoints = false` in the node's
listener stanza for the duration (the sandbox sets it). status() tells the
user exactly that.

    cer = RootCeremony.open(clients, manifest_path, journal=j)   # None: no manifest, shares unchecked
    attempt = cer.start(); cer.submit(attempt, name, share) ...; cer.cancel()

What it shares with the rekey (active node, manifest check, journal, cancel) is in base.py.
"""

from __future__ import annotations

import base64
import contextlib
import secrets
import string
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from vaultops.errors import SecurityError, UsageError, VaultAuthError, VaultError, VaultNotFound
from vaultops.services.ceremony.base import KeyCeremony
from vaultops.vault.sys_generate_root import PREFIX

if TYPE_CHECKING:
    from collections.abc import Iterator

    from vaultops.services.ceremony.shares import Share
    from vaultops.vault.models import GenerateRootStatus
    from vaultops.vault.sys_generate_root import GenerateRootEndpoints

BASE62 = string.ascii_letters + string.digits
DISABLED_HINT = ("this server disables the unauthenticated sys/generate-root endpoints (OpenBao >= 2.5.3 "
                 "default). Either create a root token from a sudo token (`bao token create -policy=root`), "
                 "or add `disable_unauthed_generate_root_endpoints = false` to the listener \"tcp\" stanza "
                 "of every node, restart them one by one, run the ceremony, then remove the line again")


def make_otp(length: int) -> str:
    """A base62 one-time pad of the length the server asks for (otp_length)."""
    if length <= 0:
        raise VaultError("the server did not announce an OTP length",
                         hint="this server version is too old for OTP root generation: use --pgp-key")
    return "".join(secrets.choice(BASE62) for _ in range(length))


def decode_token(encoded: str, otp: str) -> str:
    """token = base64decode(encoded, unpadded) XOR otp."""
    try:
        raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except ValueError:
        raise VaultError("the server's encoded token is not base64",
                         hint="cancel (`vaultops generate-root --cancel`) and run the ceremony again") from None
    pad = otp.encode("ascii")
    if len(raw) != len(pad):
        raise VaultError(f"the encoded token is {len(raw)} bytes but the OTP {len(pad)}",
                         hint="the attempt was started with another OTP: cancel and run the ceremony again")
    return bytes(a ^ b for a, b in zip(raw, pad, strict=True)).decode("ascii", errors="replace")


@dataclass(frozen=True)
class Attempt:
    nonce: str
    required: int
    otp: str | None = field(default=None, repr=False)  # None with PGP
    pgp_fingerprint: str = ""


@dataclass(frozen=True)
class Progress:
    progress: int
    required: int
    complete: bool = False
    encoded_token: str = field(default="", repr=False)


@dataclass(frozen=True)
class TokenCheck:
    policies: tuple[str, ...]

    @property
    def is_root(self) -> bool:
        return "root" in self.policies


@dataclass(frozen=True, kw_only=True)
class RootCeremony(KeyCeremony):
    """Root-token generation on the active node; shares checked against the manifest when there is one."""

    KIND: ClassVar[str] = "generate_root"
    NEEDS_MANIFEST: ClassVar[bool] = False

    @property
    def ep(self) -> GenerateRootEndpoints:
        return self.client.generate_root(prefix=PREFIX, auth=False)

    def status(self) -> GenerateRootStatus:
        """GET sys/generate-root/attempt; explains a disabled endpoint."""
        try:
            return self.ep.status()
        except VaultNotFound as exc:
            raise VaultNotFound(f"{self.client.name}: sys/generate-root is disabled", node=self.client.name,
                                status=exc.status, hint=DISABLED_HINT) from exc

    def start(self, *, pgp_key: str | None = None) -> Attempt:
        st = self.status()
        if st.started:
            raise UsageError(f"a root-token generation is already in progress (nonce {st.nonce})",
                             hint="its OTP is held by whoever started it: cancel it with "
                                  "`vaultops generate-root --cancel` and start again")
        otp = None if pgp_key else make_otp(st.otp_length)
        started = self.ep.start(otp=otp, pgp_key=pgp_key)
        self.log("generate_root.started", method="pgp" if pgp_key else "otp", nonce=started.nonce,
                 required=started.required, pgp_fingerprint=started.pgp_fingerprint or None)
        return Attempt(nonce=started.nonce, required=started.required, otp=otp,
                       pgp_fingerprint=started.pgp_fingerprint)

    def check(self, name: str, share: Share) -> None:
        """Refuse a share that is not *name*'s before anything is sent."""
        if self.manifest is not None:
            self.require(self.manifest, name, share, action="generate_root.share_rejected")

    def submit(self, attempt: Attempt, name: str, share: Share) -> Progress:
        """One keyholder's share: checked, then PUT sys/generate-root/update."""
        self.check(name, share)
        st = self.ep.update(key=base64.b64encode(share.raw).decode("ascii"), nonce=attempt.nonce)
        self.log("generate_root.share_submitted", keyholder=name, share_index=share.index,
                 progress=st.progress, required=st.required)
        if st.complete:
            self.log("generate_root.completed", method="pgp" if attempt.otp is None else "otp",
                     nonce=attempt.nonce)
        return Progress(st.progress, st.required, st.complete, st.encoded_token)

    def check_token(self, token: str) -> TokenCheck:
        """GET auth/token/lookup-self with the new token."""
        with self._token(token):
            data = self.client.token_lookup_self()
        return TokenCheck(tuple(data.get("policies") or ()))

    def revoke(self, token: str) -> None:
        """PUT auth/token/revoke-self, then prove the token no longer works."""
        with self._token(token):
            self.client.token_revoke_self()
            try:
                self.client.token_lookup_self()
            except VaultAuthError:
                self.log("generate_root.token_revoked")
                return
        raise SecurityError("the new root token still works after revoke-self",
                            hint="revoke it by hand: bao token revoke -self (with that token)")

    @contextlib.contextmanager
    def _token(self, token: str) -> Iterator[None]:
        """Use *token* on the ceremony's own connection, then put the old one back."""
        old = self.client.token
        self.client.token = token
        try:
            yield
        finally:
            self.client.token = old
