"""What vaultops knows about OpenBao release transitions, written down once.

A small versioned table: each entry is a change that bit (or would bite) a
rolling upgrade, the first release that has it, and how vaultops checks it.
An entry applies to an upgrade FROM -> TO when FROM < since <= TO. `upgrade
plan` prints the entries of the pair; the preflight runs the `config` ones
against every node's server configuration, read through its driver, before
anything is touched. Pairs outside the releases this table was written
against say so instead of passing silently.

Kinds: `config` (checked in each node's server configuration), `probe`
(checked live by the mixed-version probes, services/upgrade/probes.py),
`note` (stated; nothing to check on the nodes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vaultops.services.upgrade.versions import parse_version
from vaultops.vault.sys_rotate import ROTATION_APIS

TABLE_VERSION = 1
# The OpenBao releases this table was written against (every release note from 2.4.0 through 2.7.x).
KNOWN_FROM, KNOWN_TO = (2, 4, 0), (2, 7, 999)

# Seal types OpenBao 2.7.0 no longer builds in: each is a KMS plugin now (openbao/openbao-plugins),
# registered with `plugin "kms" "<type>" { command = ... }` (OpenBao >= 2.6.0) beside the seal stanza.
REMOVED_SEALS: dict[str, str] = {
    "awskms": "openbao-plugin-kms-aws",
    "pkcs11": "openbao-plugin-kms-pkcs11",
    "gcpckms": "openbao-plugin-kms-gcp",
    "azurekeyvault": "openbao-plugin-kms-azure",
    "ocikms": "openbao-plugin-kms-oci",
    "alicloudkms": "openbao-plugin-kms-alicloud",
}
PLUGIN_FORM_SINCE = (2, 6, 0)


@dataclass(frozen=True)
class Transition:
    id: str
    since: tuple[int, int, int]
    kind: str                 # config | probe | note
    title: str
    detail: str
    refs: tuple[str, ...] = field(default_factory=tuple)

    def applies(self, current: str, target: str) -> bool:
        return parse_version(current) < self.since <= parse_version(target)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "since": ".".join(map(str, self.since)), "kind": self.kind, "title": self.title,
                "detail": self.detail, "refs": list(self.refs)}


TRANSITIONS: tuple[Transition, ...] = (
    Transition("rekey-endpoints", (2, 5, 0), "note",
               "sys/rekey is deprecated; its unauthenticated endpoints are off per listener",
               ROTATION_APIS, ("openbao#2125",)),
    Transition("forwarding-2.6", (2, 6, 0), "probe",
               "request forwarding between a 2.6 standby and an older active broke (gRPC package renamed)",
               "every node reports healthy while writes through the upgraded standby fail: the mixed-version "
               "probe after each standby (and after leadership moves) halts the run before the point of no "
               "return", ("openbao#3899",)),
    Transition("recovery-backup-2.6", (2, 6, 0), "note",
               "a recovery-key backup taken before 2.6 could not be read after the upgrade",
               "do not rely on a pre-2.6 recovery-key backup: take and verify a new backup once the cluster "
               "runs the target (`vaultops backup run`)", ("openbao#3857",)),
    Transition("seal-plugins-2.7", (2, 7, 0), "config",
               "the awskms, pkcs11, gcpckms, azurekeyvault, ocikms and alicloudkms seals are no longer built in",
               "a node whose seal stanza names one of them needs the KMS plugin binary in its plugin_directory "
               "and a `plugin \"kms\" \"<type>\"` stanza (OpenBao >= 2.6.0 reads it) before it runs 2.7; "
               "without them it does not come back after the restart (2.7.2 exits at start-up: `Error "
               "configuring seal \"awskms\": unknown wrapper: awskms`, measured). The preflight reads every node's "
               "server configuration through its driver and refuses before anything is touched",
               ("openbao 2.6.0 release notes: Auto Unseal plugins",)),
)


@dataclass(frozen=True)
class PairReport:
    current: str
    target: str
    known: bool
    checks: tuple[Transition, ...]
    note: str

    def to_json(self) -> dict[str, Any]:
        return {"from": self.current, "to": self.target, "known": self.known, "table_version": TABLE_VERSION,
                "checks": [t.to_json() for t in self.checks], "note": self.note}

    def render(self) -> list[str]:
        lines = [f"release checks {self.current} -> {self.target} (table v{TABLE_VERSION}): {self.note}"]
        for t in self.checks:
            refs = f" [{', '.join(t.refs)}]" if t.refs else ""
            lines.append(f"  - {t.id} ({t.kind}, since {'.'.join(map(str, t.since))}): {t.title}{refs}")
        return lines


def is_known(version: str) -> bool:
    return KNOWN_FROM <= parse_version(version) <= KNOWN_TO


def checks_for(current: str, target: str) -> PairReport:
    """The table's entries for an upgrade *current* -> *target*; an unknown pair says so."""
    checks = tuple(t for t in TRANSITIONS if t.applies(current, target))
    unknown = [v for v in (current, target) if not is_known(v)]
    if unknown:
        note = (f"{' and '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} outside the releases this table "
                f"knows ({'.'.join(map(str, KNOWN_FROM))} to 2.7.x): read the release notes of every release in "
                "between; the mixed-version probes still run")
    elif checks:
        note = f"{len(checks)} known change(s) apply"
    else:
        note = "no known changes between these releases; the mixed-version probes still run"
    return PairReport(current, target, not unknown, checks, note)
