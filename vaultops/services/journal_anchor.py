"""Journal anchors: the entry count and head hash of the journal, kept where its writer cannot quietly rewrite them.

    journal:
      path: /var/lib/vaultops/journal.jsonl
      anchor:
        kv: {mount: vaultops, path: journal-anchors}   # a KV v2 entry, written with check-and-set; false: none
        sinks:                                        # backup sinks (vaultops/storage); every anchor a new object
          - {type: local, path: /srv/audit/vaultops-anchors}
          - {type: s3, bucket: audit, prefix: vaultops}
        name: ops-1             # which journal this is (default: derived from the host and the journal path)
        after_commands: true    # anchor after init, unseal, rekey, generate-root, backup run, upgrade run/resume

Without an `anchor:` section, anchors go to KV (mount vaultops, path journal-anchors) when a token
is available, and a failure after a command is only logged; with one, it is a warning.

An anchor proves that the first `count` entries of this journal ended in `head` when it was
written. `journal verify` checks the file against every anchor it can read (every kept KV
version, every sink object): fewer entries than anchored = entries removed; a different hash at
the anchored count = the chain was rewritten (recomputed, edited, reordered); entries after the
newest anchor are reported as not anchored yet, and one dated before the anchored head as a
forged append. Anchoring first verifies: a tampered journal is never anchored.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vaultops.errors import ConfigError, JournalError, VaultOpsError
from vaultops.journal import Anchor, Journal, Scan, check_anchors
from vaultops.names import check_name

if TYPE_CHECKING:
    from vaultops.vault import NodeClient

# (timeout) -> the cluster's token clients, or None without a token (Session.authenticated).
Connect = Callable[[float], "Sequence[NodeClient] | None"]

log = logging.getLogger("vaultops.journal")
ANCHOR_KEYS = ("kv", "sinks", "name", "after_commands")
KV_KEYS = ("mount", "path")
WHERE = "vaultops.yaml journal.anchor"
SINK_PREFIX = "journal-anchors"
KV_VERSIONS_READ = 20


@dataclass(frozen=True)
class AnchorSettings:
    kv_mount: str | None = "vaultops"         # None: no KV anchor
    kv_path: str = "journal-anchors"
    sinks: tuple[dict[str, Any], ...] = ()
    name: str | None = None
    after_commands: bool = True
    configured: bool = False                  # an explicit `journal.anchor` section


def anchor_settings(cfg: Any) -> AnchorSettings:
    """The `journal.anchor` mapping of vaultops.yaml, validated."""
    journal = cfg.section("journal") if cfg is not None else {}
    if "anchor" not in journal:
        return AnchorSettings()
    raw = journal["anchor"]
    if not isinstance(raw, dict):
        raise ConfigError(f"{WHERE} must be a mapping", hint="e.g. anchor: {kv: {mount: vaultops}}")
    _no_unknown(raw, ANCHOR_KEYS, WHERE)
    kv = raw.get("kv", {})
    if kv is not False and not isinstance(kv, dict):
        raise ConfigError(f"{WHERE}.kv must be a mapping or false", hint="e.g. kv: {mount: vaultops, path: anchors}")
    kv = kv if isinstance(kv, dict) else None
    if kv is not None:
        _no_unknown(kv, KV_KEYS, f"{WHERE}.kv")
    sinks = raw.get("sinks") or []
    if not isinstance(sinks, list) or not all(isinstance(s, dict) for s in sinks):
        raise ConfigError(f"{WHERE}.sinks must be a list of sink mappings", hint="e.g. - {type: local, path: /srv}")
    name = raw.get("name")
    if name is not None:
        check_name("object key", name, where=f"{WHERE}.name", error=ConfigError)
    after = raw.get("after_commands", True)
    if not isinstance(after, bool):
        raise ConfigError(f"{WHERE}.after_commands must be true or false")
    return AnchorSettings(
        kv_mount=check_name("object key", kv.get("mount", "vaultops"), where=f"{WHERE}.kv.mount",
                            error=ConfigError) if kv is not None else None,
        kv_path=check_name("object key", (kv or {}).get("path", "journal-anchors"), where=f"{WHERE}.kv.path",
                           error=ConfigError),
        sinks=tuple(sinks), name=name, after_commands=after, configured=True)


def _no_unknown(raw: dict[str, Any], known: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}", hint=f"known keys: {', '.join(known)}")


def journal_id(journal: Journal, settings: AnchorSettings) -> str:
    """Which journal anchors belong to: the configured name, else host + path (content-independent,
    so rewriting the journal cannot make its anchors disappear)."""
    if settings.name:
        return settings.name
    host = socket.gethostname()
    where = str(journal.path.expanduser().resolve())
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", host)[:40] or "host"
    digest = hashlib.sha256(host.encode() + b"\0" + where.encode()).hexdigest()
    return f"{safe}-{digest[:12]}"


# -- where anchors live ---------------------------------------------------------------------------
class KVAnchors:
    """One KV v2 entry per journal; each anchor a new version (check-and-set), older versions kept."""

    def __init__(self, kv: Any, path: str) -> None:
        self.kv, self.path = kv, path
        self.name = f"kv {kv.mount}/{path}"

    def write(self, record: dict[str, Any]) -> str:
        from vaultops.vault.kv import CASMismatch, MountMissing

        try:
            return self._write(record, CASMismatch)
        except MountMissing:
            self.kv.ensure_mount()      # created when the token may; else one line naming the command
        return self._write(record, CASMismatch)

    def _write(self, record: dict[str, Any], cas_mismatch: type[Exception]) -> str:
        for _ in range(5):
            current = self.kv.read(self.path)
            if current is not None and current.data == record:
                return f"{self.name} v{current.version}"      # our earlier write landed without an answer
            try:
                written = self.kv.write(self.path, record, cas=current.version if current else 0)
            except cas_mismatch:
                continue
            return f"{self.name} v{written.version}"
        raise JournalError(f"{self.name}: the anchor keeps changing under us", hint="is another anchor run active?")

    def read(self, *, newest_only: bool = False) -> list[Anchor]:
        from vaultops.vault.kv import MountMissing

        try:
            if newest_only:
                entry = self.kv.read(self.path)
                anchor = _anchor(entry.data, f"{self.name} v{entry.version}") if entry is not None else None
                return [anchor] if anchor is not None else []
            versions = self.kv.versions(self.path)
        except MountMissing:
            return []
        if versions is None:
            return []
        out = []
        for v in versions.live[-KV_VERSIONS_READ:]:
            entry = self.kv.read(self.path, version=v)
            anchor = _anchor(entry.data, f"{self.name} v{v}") if entry is not None else None
            if anchor is not None:
                out.append(anchor)
        return out


class SinkAnchors:
    """A backup sink: every anchor a new object, named with its count and head prefix, never overwritten."""

    def __init__(self, sink: Any, prefix: str) -> None:
        self.sink, self.prefix = sink, prefix
        self.name = sink.name

    def write(self, record: dict[str, Any]) -> str:
        stamp = re.sub(r"[^0-9T]", "", record["anchored_at"][:26])     # 20261130T114540123456
        key = f"{self.prefix}/{stamp}-{record['count']:010d}-{record['head'][:16]}.json"
        if self.sink.exists(key):
            raise JournalError(f"{self.name}: {key} exists already", hint="anchor again in a second")
        self.sink.put_bytes(key, json.dumps(record, sort_keys=True).encode())
        return f"{self.name}/{key}"

    def read(self, *, newest_only: bool = False) -> list[Anchor]:
        """Every anchor from its object name (count, head prefix); the newest few in full (head time)."""
        infos = sorted(self.sink.list(self.prefix + "/"), key=lambda o: (o.modified, o.key))
        anchors = [a for a in (_from_key(o.key, self.name, self.prefix) for o in infos) if a is not None]
        for info in infos[-3:]:
            try:
                full = _anchor(json.loads(self.sink.get_bytes(info.key)), f"{self.name}/{info.key}")
            except (ValueError, VaultOpsError):
                full = None
            if full is not None:
                anchors.append(full)
        return anchors


def _from_key(key: str, name: str, prefix: str) -> Anchor | None:
    m = re.fullmatch(rf"{re.escape(prefix)}/(\d{{8}}T\d{{12}})-(\d{{10}})-([0-9a-f]{{16}})\.json", key)
    if m is None:
        return None
    return Anchor(journal_id=prefix.rsplit("/", 1)[-1], count=int(m.group(2)), head=m.group(3),
                  anchored_at=m.group(1), source=f"{name}/{key}")


def _anchor(raw: Any, source: str) -> Anchor | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("count"), int) or not isinstance(raw.get("head"), str):
        return None
    if raw["count"] < 0 or not re.fullmatch(r"[0-9a-f]{64}", raw["head"]):
        return None
    return Anchor(journal_id=str(raw.get("journal_id", "")), count=raw["count"], head=raw["head"],
                  head_time=str(raw.get("head_time") or ""), anchored_at=str(raw.get("anchored_at") or ""),
                  host=str(raw.get("host") or ""), source=source)


@dataclass
class Places:
    """The anchor destinations of one journal, and why any could not be used."""

    stores: list[Any] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)


def places(cfg: Any, journal: Journal, settings: AnchorSettings, *, connect: Connect | None = None,
           budget: float = 5.0, quick: bool = False) -> Places:
    """Where anchors go. *quick* (after a command): KV only if a node is active right now, short timeouts.

    *connect(timeout)* gives the cluster's token clients, or None when there is no token; it is
    only called when the KV anchor is configured."""
    jid = journal_id(journal, settings)
    out = Places()
    if settings.kv_mount is not None and cfg is not None and cfg.nodes:
        from vaultops.vault.http import DEFAULT_TIMEOUT
        from vaultops.vault.kv import ClusterKV

        clients = connect(2.0 if quick else DEFAULT_TIMEOUT) if connect is not None else None
        if clients:
            kv = ClusterKV(list(clients), settings.kv_mount, budget=budget)
            if quick and not kv.serving():
                out.unavailable.append("kv: no active node right now (sealed, or electing a leader)")
            else:
                out.stores.append(KVAnchors(kv, f"{settings.kv_path}/{jid}"))
        else:
            out.unavailable.append("kv: no Vault token (VAULT_TOKEN, cluster.token_file, ~/.vault-token)")
    for raw in settings.sinks:
        from vaultops.storage import get_sink

        resolve: Callable[[str], Path] = cfg.resolve_path if cfg is not None else (lambda p: Path(p).expanduser())
        out.stores.append(SinkAnchors(get_sink(raw, resolve_path=resolve), f"{SINK_PREFIX}/{jid}"))
    return out


# -- the two operations ---------------------------------------------------------------------------
@dataclass(frozen=True)
class AnchorReport:
    scan: Scan
    anchors: tuple[Anchor, ...]
    problems: tuple[Any, ...]
    unreadable: tuple[str, ...]          # sources that could not be read, with why
    unanchored: int                      # entries after the newest anchor

    @property
    def intact(self) -> bool:
        return not self.problems


def check(journal: Journal, where: Places, *, newest_only: bool = False) -> AnchorReport:
    """The chain, and the file against every anchor readable from *where* (or the newest of each)."""
    scan = journal.scan()
    anchors: list[Anchor] = []
    unreadable = list(where.unavailable)
    for store in where.stores:
        try:
            anchors += store.read(newest_only=newest_only)
        except VaultOpsError as exc:
            unreadable.append(f"{store.name}: {exc.message}")
    problems = list(scan.problems) + check_anchors(scan, anchors)
    newest = max((a.count for a in anchors), default=0)
    return AnchorReport(scan, tuple(anchors), tuple(problems), tuple(unreadable), max(0, scan.count - newest))


@dataclass(frozen=True)
class Anchored:
    written: tuple[str, ...]                 # where the anchor went
    failed: tuple[VaultOpsError, ...]        # destinations that refused or could not be reached


def anchor(journal: Journal, settings: AnchorSettings, where: Places) -> Anchored:
    """Verify, then write one anchor to every destination (each tried, whatever the others do)."""
    if not where.stores:
        raise JournalError("nowhere to anchor the journal: " + ("; ".join(where.unavailable) or "none configured"),
                           hint="give a Vault token, or configure journal.anchor.sinks in vaultops.yaml")
    report = check(journal, where, newest_only=True)
    if report.problems:
        first = report.problems[0]
        raise JournalError(f"refusing to anchor {journal.path}: line {first.line}: {first.reason}",
                           hint="run `vaultops journal verify`; a tampered journal is never anchored")
    record = {"journal_id": journal_id(journal, settings), "count": report.scan.count, "head": report.scan.head,
              "head_time": report.scan.head_time, "path": str(journal.path), "host": socket.gethostname(),
              "user": _user(), "anchored_at": datetime.now(timezone.utc).isoformat(timespec="microseconds")}
    written, failed = [], []
    for store in where.stores:
        try:
            written.append(store.write(record))
        except VaultOpsError as exc:
            failed.append(exc)
        except OSError as exc:
            failed.append(JournalError(f"{store.name}: cannot write the anchor ({exc.strerror})",
                                       hint="check the anchor destination's space and permissions"))
    return Anchored(tuple(written), tuple(failed))


def anchor_after_command(cfg: Any, *, operator: str | None = None, connect: Connect | None = None,
                         budget: float = 3.0) -> list[str]:
    """After a ceremony, backup or upgrade: anchor, returning warnings (never raising)."""
    try:
        settings = anchor_settings(cfg)
        journal = Journal(cfg.journal_path, operator=operator)
        if not settings.after_commands or not journal.path.exists():
            return []
        where = places(cfg, journal, settings, connect=connect, budget=budget, quick=True)
        if not where.stores and not settings.configured:
            return []
        done = anchor(journal, settings, where)
        if not settings.configured:
            return []
        return ([f"journal not anchored in {u}" for u in where.unavailable]
                + [f"journal not anchored: {exc.message}" for exc in done.failed])
    except VaultOpsError as exc:
        log.debug("anchoring after the command failed", exc_info=True)
        if settings_configured(cfg):
            return [f"journal not anchored: {exc.message} (run `vaultops journal anchor` later)"]
        return []
    except OSError as exc:
        return [f"journal not anchored: {exc.strerror}"]


def settings_configured(cfg: Any) -> bool:
    try:
        return anchor_settings(cfg).configured
    except VaultOpsError:
        return True


def _user() -> str:
    from vaultops.files.lock import os_user

    return os_user()


__all__ = ["ANCHOR_KEYS", "AnchorReport", "AnchorSettings", "KVAnchors", "Places", "SinkAnchors", "anchor",
           "anchor_after_command", "anchor_settings", "check", "journal_id", "places"]
