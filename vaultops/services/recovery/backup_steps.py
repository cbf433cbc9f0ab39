"""The actions of runbooks/recover-from-backup.yaml: every node is lost; rebuild from a verified backup.

    assess -> pick -> fresh[each node]: stop, aside -> start first
           -> seed: init (a throwaway seal: 1 share) + restore (forced, verified again on the way)
           -> unseal first (the backup's shares) -> restored -> join[each other node] -> verify -> report

The throwaway key and root token exist only in this process (ctx.memory) and are dropped once the
backup's keyring has replaced them. A run killed between `init` and `restore` cannot reuse that
key: on resume `init`'s check fails, the `seed` group starts over, and the blank node, whose
throwaway data is worthless, is stopped, set aside and started fresh.

Key epochs: a backup opens only with the shares of the key epoch it was taken in (field notes).
`pick` records the backup's epoch (its manifest's `key_epoch`, or by its time in the keyholder
manifest's history: ceremony/epochs.py) and checks the shares given against that epoch's keyholder
manifest before anything is stopped; a share of another epoch is refused naming its epoch. Every
unseal of the run (`unseal_restored`: the restored node and the joiners, which take the restored
keyring) checks them against the same epoch -- a resumed run reads it from `pick`'s evidence.
A backup whose epoch is unknown (rekeyed outside vaultops) is opened through the current manifest.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from vaultops.errors import RunbookError, SecurityError, ShareMismatchError, UsageError, VaultOpsError
from vaultops.retry import TimedOut, poll
from vaultops.runbook.registry import Evidence, action, with_verify
from vaultops.services.recovery import node_steps
from vaultops.services.recovery.context import RecoveryContext
from vaultops.services.recovery.settings import sentinels
from vaultops.services.upgrade.unseal import CeremonyUnsealer
from vaultops.vault import NodeClient
from vaultops.vault.cluster import find_active, wait_active

if TYPE_CHECKING:
    from vaultops.services.ceremony.epochs import EpochHistory

THROWAWAY = "throwaway"
EPOCH = "key_epoch"   # ctx.memory: the key epoch ctx.unsealer was rebased on
SEAL_WAIT = 30.0    # a node seals itself within ~5 s of a forced restore (field notes)


@action("assess_all_lost")
def assess_all_lost(ctx: RecoveryContext) -> Evidence:
    """Every node is lost: none answers as an initialised member, none has raft data (refuses otherwise)."""
    if ctx.storage != "raft":
        raise SecurityError(f"{ctx.storage} storage keeps the data outside the nodes: nothing to rebuild here",
                            hint="restore the storage (`vaultops backup restore`), then `vaultops node replace NODE`")
    answering = [n for n in ctx.names if _answers(ctx.clients[n])]
    if answering:
        raise SecurityError(f"not every node is lost: {', '.join(answering)} still answer",
                            hint="see `vaultops status`; `vaultops recover quorum` if quorum is lost")
    with_data = [n for n in ctx.names if ctx.has_data(n)]
    if with_data:
        raise SecurityError(f"{', '.join(with_data)} still have their raft data: start them, or recover quorum from "
                            "them (`vaultops recover quorum`) — a backup is older than their data",
                            hint="to rebuild from the backup anyway, move their data away first")
    return {"summary": f"every node is lost ({', '.join(ctx.names)})", "at": time.time(),
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def _answers(client: NodeClient) -> bool:
    try:
        return client.seal.status().initialized
    except VaultOpsError:
        return False


@action("pick_backup")
def pick_backup(ctx: RecoveryContext, *, name: str | None = None) -> Evidence:
    """The newest verified backup (or the one named), its manifest read; verified again when fetched."""
    from vaultops.services.backup.catalog import newest
    from vaultops.services.backup.crypt.reveal import check_opens
    from vaultops.services.backup.stored import read_manifest

    settings = _settings(ctx)
    errors: dict[str, str] = {}
    for sink in _sinks(ctx):
        try:
            found = name or newest(sink, cluster=settings.cluster).name
            manifest = read_manifest(sink, found)
        except VaultOpsError as exc:
            errors[sink.name] = exc.message
            continue
        if manifest.kind != "raft":
            raise UsageError(f"{found} is a {manifest.kind} backup", hint="pick a raft backup with --name")
        epoch = _key_epoch(ctx, manifest)
        _on_epoch(ctx, epoch, found)    # the shares checked now: nothing is stopped for wrong ones
        check_opens(sink, manifest, ctx.identities)   # and an encrypted backup's identity
        return {"summary": f"{found} from {sink.name}, taken {manifest.finished_at}"
                           f"{f', key epoch {epoch}' if epoch is not None else ''}", "name": found,
                "sink": sink.name, "finished_at": manifest.finished_at, "raft_index": manifest.raft_index,
                "cluster_id": manifest.cluster_id, "server_version": manifest.server_version, "key_epoch": epoch}
    raise RunbookError(f"no verified backup{' ' + name if name else ''} in any sink",
                       hint="check backup.sinks (`vaultops backup list`)", evidence={"errors": errors})


def _history(ctx: RecoveryContext) -> EpochHistory | None:
    """The keyholder manifest's epochs, when the shares given are checked against it (else None)."""
    from vaultops.services.ceremony.epochs import load_epochs

    u = ctx.unsealer
    if not isinstance(u, CeremonyUnsealer) or u.manifest_path is None:
        return None
    return load_epochs(u.manifest_path)


def _key_epoch(ctx: RecoveryContext, manifest: Any) -> int | None:
    """The backup's key epoch: recorded in its manifest, else placed by its time; None when unknown."""
    history = _history(ctx)
    if history is None:
        return None
    recorded = manifest.key_epoch
    if recorded is not None:
        if recorded.number is None:
            ctx.emit(f"the key epoch of {manifest.name} is unknown ({recorded.problem}): its shares are checked "
                     "against the current keyholder manifest")
            return None
        return history.number(recorded.number).number   # an epoch the keyholder manifest never had: refused
    found = history.at(datetime.fromisoformat(manifest.started_at))
    return found.number if found is not None else None


def _on_epoch(ctx: RecoveryContext, epoch: int | None, backup: str) -> None:
    """ctx.unsealer checks the shares against key *epoch*'s keyholder manifest (once per process), now."""
    if epoch is None or ctx.memory.get(EPOCH) == epoch:
        return
    history, u = _history(ctx), ctx.unsealer
    if history is None or not isinstance(u, CeremonyUnsealer):
        return
    ctx.unsealer = u.rebased(history.number(epoch), history)
    ctx.memory[EPOCH] = epoch
    try:
        ctx.unsealer.check()
    except ShareMismatchError as exc:
        raise ShareMismatchError(f"{backup} is of key epoch {epoch}: {exc.message}", hint=exc.hint) from None


@action("unseal_restored")
def unseal_restored(ctx: RecoveryContext, *, node: str) -> Evidence:
    """Unseal a node of the restored cluster with the shares of the picked backup's key epoch."""
    pick = ctx.earlier("pick")
    _on_epoch(ctx, pick.get("key_epoch"), pick["name"])
    evidence = node_steps.unseal_node.run(ctx, node=node)
    return {**evidence, "key_epoch": pick.get("key_epoch")}


unseal_restored = with_verify(unseal_restored, node_steps.unseal_node.verify or (lambda _c, **_k: None))


def _settings(ctx: RecoveryContext) -> Any:
    if ctx.backup is None:
        raise UsageError("no backup: section in vaultops.yaml", hint="configure backup.sinks where the backups are")
    return ctx.backup


def _sinks(ctx: RecoveryContext) -> list[Any]:
    from vaultops.services.backup.runner import build_sinks

    return build_sinks(ctx.backup_cfg or ctx.cfg, _settings(ctx))


@action("init_throwaway")
def init_throwaway(ctx: RecoveryContext, *, node: str) -> Evidence:
    """Initialise a throwaway seal (1 share) on the first node, unseal it and wait until it leads alone."""
    client = ctx.clients[node]
    if client.seal.status().initialized and THROWAWAY not in ctx.memory:
        ctx.emit(f"{node} was initialised by an interrupted run whose throwaway key is gone: starting it blank")
        for step in (node_steps.stop_node, node_steps.set_aside_data, node_steps.start_node):
            step.run(ctx, node=node)
    if not client.seal.status().initialized:
        result = client.seal.init(shares=1, threshold=1)
        ctx.memory[THROWAWAY] = (result.keys_b64[0], result.root_token)
    key, _token = ctx.memory[THROWAWAY]
    client.seal.unseal(key)
    wait_active([client], timeout=ctx.wait, error=RunbookError)
    return {"summary": f"{node} initialised with a throwaway seal and active (key held in memory only)"}


def _throwaway_usable(ctx: RecoveryContext, *, node: str) -> str | None:
    with contextlib.suppress(RunbookError):
        ctx.earlier("seed.restore")
        return None       # the backup's keyring replaced it: nothing of it is needed any more
    return None if THROWAWAY in ctx.memory else "the throwaway key lived in the process that was stopped"


init_throwaway = with_verify(init_throwaway, _throwaway_usable)


@action("restore_backup")
def restore_backup(ctx: RecoveryContext, *, node: str) -> Evidence:
    """Fetch the picked backup (verified again against its manifest), force-restore it, wait for the seal."""
    from vaultops.services.backup.restore import fetched
    from vaultops.services.backup.stored import read_manifest

    pick = ctx.earlier("pick")
    held = ctx.memory.get(THROWAWAY)
    if held is None:
        raise RunbookError("the throwaway root token is gone", hint="resume: the seed steps run again")
    sink = next((s for s in _sinks(ctx) if s.name == pick["sink"]), None)
    if sink is None:
        raise RunbookError(f"sink {pick['sink']} is no longer configured", hint="restore backup.sinks, then resume")
    client, started = ctx.clients[node], time.monotonic()
    manifest = read_manifest(sink, pick["name"])
    with fetched(sink, pick["name"], manifest, settings=ctx.backup, identities=ctx.identities) as path, \
            path.open("rb") as fh, \
            _token(client, held[1]):
        client.raft.restore(fh, force=True)
    ctx.memory.pop(THROWAWAY, None)
    sealed = _wait_sealed(client)
    # Sealed, the node still reports the throwaway seal (1 of 1) and takes shares against it: measured,
    # the backup's shares never unseal it. Restarted, it reads the backup's seal configuration.
    for step in (node_steps.stop_node, node_steps.start_node):
        step.run(ctx, node=node)
    st = client.seal.status()
    return {"summary": f"{pick['name']} restored in {time.monotonic() - started:.1f}s; {node} "
                       f"{'sealed itself' if sealed else 'did not seal itself'}, restarted: needs {st.t} of {st.n}",
            "sealed": sealed, "threshold": st.t, "shares": st.n}


@contextlib.contextmanager
def _token(client: NodeClient, token: str) -> Iterator[None]:
    """The throwaway root token for the restore call only; the operator's token again after it."""
    saved = client.token
    client.token = token
    try:
        yield
    finally:
        client.token = saved


def _wait_sealed(client: NodeClient) -> bool:
    try:
        # seal-status hangs for ~5 s while the restore is applied; then "unsealed", then sealed
        return bool(poll(lambda: True if client.seal.status().sealed else None, timeout=SEAL_WAIT, interval=0.2,
                         what=f"{client.name} to seal itself", tolerate=(VaultOpsError,)))
    except TimedOut:
        return False


@action("wait_restored")
def wait_restored(ctx: RecoveryContext, *, node: str) -> Evidence:
    """Wait until the node leads with the backup's data: the backup's cluster id, active."""
    pick, client = ctx.earlier("pick"), ctx.clients[node]
    try:
        active = poll(lambda: find_active([client], timeout=5.0), timeout=ctx.wait, interval=0.2,
                      what=f"{node} to become active")
    except TimedOut:
        raise RunbookError(f"{node} did not become active in {ctx.wait:g}s", hint="see its server log") from None
    if pick.get("cluster_id") and active.health.cluster_id != pick["cluster_id"]:
        raise RunbookError(f"{node} reports cluster {active.health.cluster_id}, the backup is of {pick['cluster_id']}",
                           hint="the restore did not take: see the node's server log")
    return {"summary": f"{node} active as cluster {active.health.cluster_id}", "cluster_id": active.health.cluster_id}


@action("verify_sentinels")
def verify_sentinels(ctx: RecoveryContext) -> Evidence:
    """Read the sentinel paths through the active node with the operator's token."""
    found = find_active(list(ctx.clients.values()), timeout=5.0)
    if found is None:
        raise RunbookError("no active node to read the sentinels from", hint="see `vaultops status`")
    paths = sentinels(ctx.cfg, ctx.settings)
    read: dict[str, str] = {}
    for path in paths:
        try:
            read[path] = "ok" if found.client.read(path).get("data") else "empty"
        except VaultOpsError as exc:
            read[path] = f"error: {exc.message}"
    bad = {p: r for p, r in read.items() if r != "ok"}
    if bad:
        raise RunbookError(f"sentinel paths do not read: {bad}", hint="check recovery.sentinels and the token",
                           evidence={"sentinels": read})
    return {"summary": f"{len(read)} sentinel path(s) read" if read else "no sentinel paths configured "
                       "(recovery.sentinels or backup.drill.sentinels)", "sentinels": read}


@action("report_recovery")
def report_recovery(ctx: RecoveryContext) -> Evidence:
    """RTO: from the start of the run to verified data. RPO: the age of the backup's data at that start."""
    began, pick = float(ctx.earlier("assess")["at"]), ctx.earlier("pick")
    taken = datetime.fromisoformat(pick["finished_at"]).timestamp()
    rto, rpo = time.time() - began, began - taken
    out: dict[str, Any] = {"rto_seconds": round(rto, 1), "rpo_seconds": round(rpo, 1), "backup": pick["name"],
                           "backup_raft_index": pick.get("raft_index")}
    if ctx.seen is not None:
        out["highest_index_before"], out["seen_at"] = ctx.seen.highest[0], ctx.seen.at
    out["summary"] = (f"RTO {rto:.1f}s (run start to verified data); RPO {rpo:.0f}s (writes after "
                      f"{pick['finished_at']} are not in the backup)")
    ctx.emit(out["summary"])
    return out


__all__ = ["assess_all_lost", "init_throwaway", "pick_backup", "report_recovery", "restore_backup",
           "unseal_restored", "verify_sentinels", "wait_restored"]
