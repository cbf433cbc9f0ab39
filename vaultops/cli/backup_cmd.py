"""vaultops backup run|list|verify|inspect|prune|restore|drill|policy."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from vaultops.cli import add_format, command_parser
from vaultops.cli.identity_input import add_identity
from vaultops.cli.output import ask, event_line, notice
from vaultops.cli.journal_cmd import anchored

if TYPE_CHECKING:
    from vaultops.session import Session

ORPHANED_EXIT = 3   # verified/listed, but encrypted to none of the recipients configured now
ORPHANED = ("ORPHANED: encrypted to none of the recipients in backup.encryption: only identities kept "
            "elsewhere open it (keep them, or re-encrypt what you must keep)")


def register(sub: argparse._SubParsersAction) -> None:
    from vaultops.cli.backup_drill import DRILL_DOC
    from vaultops.cli.backup_epochs import EPOCHS_DOC

    p = command_parser(sub, "backup", help="verified snapshot backups: run, list, verify, restore, drill")
    bsub = p.add_subparsers(dest="backup_command", metavar="ACTION", required=True)

    run = _cmd(bsub, "run", cmd_run, "take a snapshot, verify it while streaming it to every sink (for cron)")
    run.add_argument("--lock-wait", type=float, default=0.0, metavar="SECONDS",
                     help="wait this long for a concurrent run to finish (default: fail at once)")
    _cmd(bsub, "list", cmd_list, "backups in a sink with age, size and verification state")
    ver = _cmd(bsub, "verify", cmd_verify, "re-read a stored backup and check it (default: the newest)")
    ver.add_argument("name", nargs="?", help="backup name (default: newest)")
    ver.add_argument("--file", metavar="PATH", help="verify a snapshot file instead (e.g. from 'bao operator raft "
                     "snapshot save')")
    ver.add_argument("--kind", choices=("raft", "consul", "postgresql"), default="raft", help="format of --file")
    ins = _cmd(bsub, "inspect", cmd_inspect, "meta (index, term, version, peers) and per-prefix counts/sizes")
    ins.add_argument("name", nargs="?", help="backup name (default: newest)")
    ins.add_argument("--depth", type=int, default=1, help="key path segments per prefix (default 1)")
    pr = _cmd(bsub, "prune", cmd_prune, "apply backup.retention (refuses after a failed run)")
    pr.add_argument("--dry-run", action="store_true", help="print the plan, delete nothing")
    rs = _cmd(bsub, "restore", cmd_restore, "restore a backup into the configured cluster")
    rs.add_argument("name", nargs="?", default="latest", help="backup name, or 'latest' (default)")
    rs.add_argument("--file", metavar="PATH", help="restore a snapshot file instead (verified first)")
    rs.add_argument("--force", action="store_true", help="accept another cluster's snapshot (read the warning)")
    rs.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    dr = _cmd(bsub, "drill", cmd_drill, "restore the newest backup into a throwaway sandbox; report RTO/RPO "
              "(reads the ORIGINAL cluster's unseal shares from stdin)", description=DRILL_DOC)
    dr.add_argument("--name", help="backup to drill (default: newest verified)")
    dr.add_argument("--epoch", type=int, metavar="K", help="drill the newest verified backup of key epoch K, with "
                    "epoch-K shares (`vaultops backup epochs` lists them)")
    dr.add_argument("--keep", action="store_true", help="leave the drill sandbox running (debugging)")
    dr.add_argument("--manifest", metavar="FILE",
                    help="keyholder manifest the shares are checked against (default: keyholders.manifest in "
                         "vaultops.yaml; its key epoch of the backup)")
    dr.add_argument("--no-manifest", action="store_true",
                    help="do not check the shares first (a wrong share is found only after the restore)")
    dr.add_argument("--allow-unverified", action="store_true",
                    help="accept shares of keyholders that have no verifier (unchecked)")
    dr.add_argument("--no-sentinels", action="store_true",
                    help="drill without backup.drill.sentinels: proves the backup restores and unseals, "
                         "not that its data reads back")
    _cmd(bsub, "epochs", cmd_epochs, "key epochs of the retained backups: whose shares open them, still "
         "reachable? (for cron: exit 3 and a metric when not)", description=EPOCHS_DOC)
    pol = command_parser(bsub, "policy", help="print the minimal policy a backup identity needs")
    pol.set_defaults(handler=cmd_policy)


def _cmd(bsub: argparse._SubParsersAction, name: str, fn: Any, help: str, **kwargs: Any) -> argparse.ArgumentParser:
    if "description" in kwargs:
        kwargs["formatter_class"] = argparse.RawDescriptionHelpFormatter
    p = command_parser(bsub, name, help=help, **kwargs)
    add_format(p)
    if name not in ("run", "prune", "epochs"):
        p.add_argument("--sink", metavar="N|NAME", help="which sink (index from 0 or name; default: the first)")
    elif name != "run":
        p.add_argument("--sink", metavar="N|NAME", help="only this sink (default: every sink)")
    if name in ("verify", "inspect", "restore", "drill"):
        add_identity(p, "age identity or ssh private key that opens encrypted backups ('-': stdin, except for "
                        "drill)" + (" (without: the ciphertext is checked only)" if name == "verify" else ""))
    p.set_defaults(handler=fn)
    return p


# Events that only move a person's progress bar: never JSON lines (cron output stays as it was).
PROGRESS_ONLY = frozenset({"snapshot.progress", "drill.stage"})


def _identities(args: argparse.Namespace, *, stdin_taken: str | None = None) -> Any:
    from vaultops.cli.identity_input import read_identities

    return read_identities(args.identity, stdin_taken=stdin_taken)


def _emit(event: str, **fields: Any) -> None:
    """JSON lines on stderr: what cron mails and journald keeps."""
    if event in PROGRESS_ONLY:
        return
    # level "error" is only the one error line of the exit point (cli/output.py): a failed run is a warning here
    level = "warning" if event in ("warning", "run.failed", "run.partial", "sink.failed", "prune.untrusted") else "info"
    print(event_line(level, event, **fields), file=sys.stderr, flush=True)


def _context(session: Session) -> tuple[Any, Any]:
    return session.config, session.backup_settings


def _pick_sink(cfg: Any, settings: Any, choice: str | None) -> Any:
    from vaultops.errors import UsageError
    from vaultops.services.backup.runner import build_sinks

    sinks = build_sinks(cfg, settings)
    if choice is None:
        return sinks[0]
    if choice.isdigit() and int(choice) < len(sinks):
        return sinks[int(choice)]
    for sink in sinks:
        if sink.name == choice:
            return sink
    raise UsageError(f"no sink {choice!r}", hint="known: " + ", ".join(f"{i}={s.name}" for i, s in enumerate(sinks)))


def _out(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2, default=str) if args.format == "json" else text)


def _interactive(args: argparse.Namespace) -> bool:
    """A person at a terminal: a live progress line and a summary instead of JSON lines."""
    return args.format != "json" and sys.stderr is not None and sys.stderr.isatty()


@contextlib.contextmanager
def _reporting(args: argparse.Namespace, make: Callable[[Any], Callable[..., None]]) -> Iterator[Callable[..., None]]:
    """The emit() a run reports through: JSON lines, or a live line made by *make*(LiveLine)."""
    if not _interactive(args):
        yield _emit
        return
    from vaultops.cli.progress import LiveLine

    line = LiveLine(sys.stderr)
    try:
        yield make(line)
    finally:
        line.close()


@anchored(warn=lambda message: _emit("warning", message=message))
def cmd_run(session: Session, args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from vaultops.cli.progress import BackupProgress, run_summary
    from vaultops.errors import BackupError
    from vaultops.services.backup.record import last_run
    from vaultops.services.backup.runner import run_backup

    cfg, settings = _context(session)
    last = last_run(settings) or {}
    expected = int(last.get("size") or 0) if last.get("ok") else None
    with _reporting(args, lambda line: BackupProgress(line, expected=expected, sinks=len(settings.sinks))) as emit, \
            _interrupt_on_sigterm():
        result = run_backup(cfg, settings, emit=emit, lock_wait=args.lock_wait, journal=session.journal,
                            connect=session.new_clients)  # its own clients: the backup identity logs in on them
    if _interactive(args):
        print(run_summary(result))
    else:
        lines = [f"{result.name}: {'ok' if result.ok else 'FAILED'} ({result.size} bytes, {result.duration:.1f}s)"]
        lines += [f"  {sink}: {state}" for sink, state in result.sinks.items()]
        _out(args, asdict(result), "\n".join(lines))
    return 0 if result.ok else BackupError.exit_code


@contextlib.contextmanager
def _interrupt_on_sigterm() -> Iterator[None]:
    """systemd/cron stop a run with SIGTERM: unwind like Ctrl-C so uploads are aborted, temp files removed."""
    import signal
    import threading

    from vaultops import interrupt

    def handler(signum: int, frame: Any) -> None:
        interrupt.request()    # the raise below can be swallowed; the pipeline checks before publishing
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        interrupt.clear()


def _age(when: datetime) -> str:
    secs = int((datetime.now(timezone.utc) - when).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{secs // size}{unit}"
    return f"{secs}s"


def cmd_list(session: Session, args: argparse.Namespace) -> int:
    from vaultops.cli.render import table
    from vaultops.services.backup.catalog import list_backups, open_uploads, read_manifests

    cfg, settings = _context(session)
    sink = _pick_sink(cfg, settings, args.sink)
    entries = list_backups(sink, cluster=settings.cluster)
    manifests = read_manifests(sink, entries)
    sealed = _encryption_states(sink, entries, settings, manifests)
    epochs = _epochs(session, entries, manifests)
    rows = [{"name": e.name, "time": e.time.isoformat(), "age": _age(e.time), "size": e.size,
             "state": e.state.value, "problem": e.problem, "encrypted": sealed.get(e.name, "?"),
             **epochs.get(e.name, {"epoch": None, "epoch_source": None})} for e in entries]
    uploads = [{"key": u.key, "upload_id": u.upload_id, "started": u.started.isoformat(), "age": _age(u.started)}
               for u in open_uploads(sink, cluster=settings.cluster)]
    text = f"{sink.name}\n" + table(["NAME", "AGE", "SIZE", "STATE", "ENCRYPTED", "EPOCH"],
                                    [[r["name"], r["age"], r["size"], r["state"], r["encrypted"],
                                      _epoch_cell(r)] for r in rows])
    text += "".join(f"\n  {r['name']}: {r['problem']}" for r in rows if r["problem"])
    if uploads:
        text += "\n\nopen uploads (never committed nor aborted):\n" + table(
            ["KEY", "AGE", "UPLOAD ID"], [[u["key"], u["age"], u["upload_id"]] for u in uploads])
    orphaned = sum(1 for v in sealed.values() if v == "ORPHANED")
    _out(args, {"sink": sink.name, "backups": rows, "open_uploads": uploads, "orphaned": orphaned},
         text + (f"\n\n{orphaned} backup(s) {ORPHANED}" if orphaned else ""))
    return ORPHANED_EXIT if orphaned else 0


def _epochs(session: Session, entries: Any, manifests: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per published backup: its key epoch and where that comes from (recorded | inferred from its time |
    unknown)."""
    from vaultops.cli.backup_epochs import load_history
    from vaultops.services.backup.epochs import epoch_of

    history = load_history(session)
    out: dict[str, dict[str, Any]] = {}
    for e in entries:
        if e.name in manifests:
            number, inferred = epoch_of(manifests[e.name], e, history)
            source = "unknown" if number is None else "inferred" if inferred else "recorded"
            out[e.name] = {"epoch": number, "epoch_source": source}
    return out


def _epoch_cell(row: dict[str, Any]) -> str:
    return {None: "-", "unknown": "unknown", "inferred": f"~{row['epoch']}"}.get(row["epoch_source"],
                                                                                str(row["epoch"]))


def _encryption_states(sink: Any, entries: Any, settings: Any, manifests: Any = None) -> dict[str, str]:
    """Per backup: '-', 'yes' or 'ORPHANED'; the count goes to a textfile beside backup.metrics_file."""
    from vaultops.services.backup import metrics
    from vaultops.services.backup.catalog import Sealed, encryption_states
    from vaultops.services.backup.crypt.seal import fingerprints

    states = encryption_states(sink, entries, fingerprints(settings.encryption), manifests=manifests)
    if settings.metrics_file:
        try:
            metrics.write_orphaned(settings.metrics_file, cluster=settings.cluster, sink=sink.name,
                                   count=sum(1 for v in states.values() if v is Sealed.ORPHANED))
        except OSError as exc:
            _emit("warning", message=f"orphaned-backups metric not written: {exc}")
    return {k: v.value for k, v in states.items()}


def _name_or_newest(sink: Any, settings: Any, name: str | None) -> str:
    from vaultops.services.backup.catalog import newest

    if name and name != "latest":
        return name
    return newest(sink, cluster=settings.cluster, warn=lambda m: _emit("warning", message=m)).name


def cmd_verify(session: Session, args: argparse.Namespace) -> int:
    from vaultops.errors import VerificationError
    from vaultops.services.backup.catalog import verify_backup

    cfg, settings = _context(session)
    if args.file:
        return _verify_file(args, settings)
    sink = _pick_sink(cfg, settings, args.sink)
    res = verify_backup(sink, _name_or_newest(sink, settings, args.name), settings=settings,
                        identities=_identities(args))
    _out(args, {"name": res.name, "sink": res.sink, "ok": res.ok, "detail": res.detail, "encrypted": res.encrypted,
                "decrypted": res.decrypted, "orphaned": res.orphaned},
         f"{res.name} on {res.sink}: {'verified' if res.ok else 'FAILED'} - {res.detail}"
         + (f"\n{ORPHANED}" if res.orphaned else ""))
    return VerificationError.exit_code if not res.ok else ORPHANED_EXIT if res.orphaned else 0


def _verify_file(args: argparse.Namespace, settings: Any) -> int:
    from pathlib import Path

    from vaultops.errors import VerificationError
    from vaultops.services.backup.restore import verify_file

    try:
        report = verify_file(Path(args.file), args.kind, settings=settings)
    except VerificationError as exc:
        _out(args, {"file": args.file, "ok": False, "detail": str(exc)}, f"{args.file}: FAILED - {exc}")
        return VerificationError.exit_code
    _out(args, {"file": args.file, "ok": True, "size": report.size, "sha256": report.sha256,
                "members": report.members, "meta": report.meta},
         f"{args.file}: verified ({report.size} bytes, sha256 {report.sha256})")
    return 0


def cmd_inspect(session: Session, args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from vaultops.cli.render import table
    from vaultops.services.backup.catalog import inspect_backup

    cfg, settings = _context(session)
    sink = _pick_sink(cfg, settings, args.sink)
    ins = inspect_backup(sink, _name_or_newest(sink, settings, args.name), depth=args.depth, settings=settings,
                         identities=_identities(args))
    m = ins.manifest
    head = [f"name      {m.name}", f"kind      {m.kind}", f"cluster   {m.cluster_name} ({m.cluster_id})",
            f"version   {m.server_version}", f"node      {m.source_node}", f"taken     {m.finished_at}",
            f"size      {m.size}", f"sha256    {m.sha256}", f"epoch     {_epoch_line(m)}"]
    if ins.meta.get("index") is not None:
        head.append(f"index     {ins.meta['index']}  term {ins.meta['term']}")
        head += [f"peer      {p['id']} {p['address']} {'voter' if p['voter'] else 'non-voter'}"
                 for p in ins.meta.get("peers", [])]
    cols = list(ins.prefixes[0]) if ins.prefixes else ["prefix", "entries", "bytes"]
    body = table([c.upper() for c in cols], [[r[c] for c in cols] for r in ins.prefixes])
    _out(args, {"manifest": asdict(m), "meta": ins.meta, "entries": ins.entries, "prefixes": ins.prefixes},
         "\n".join(head) + "\n\n" + body)
    return 0


def _epoch_line(m: Any) -> str:
    k = m.key_epoch
    if k is None:
        return "not recorded (a backup from before key epochs)"
    return (f"{k.number}" if k.number is not None else f"unknown ({k.problem})") + f"  ({k.threshold} of {k.shares} shares)"


def cmd_prune(session: Session, args: argparse.Namespace) -> int:
    from vaultops.cli.render import table
    from vaultops.services.backup.catalog import prune
    from vaultops.services.backup.runner import build_sinks

    cfg, settings = _context(session)
    sinks = [_pick_sink(cfg, settings, args.sink)] if args.sink else build_sinks(cfg, settings)
    report, text = [], []
    for sink in sinks:
        decisions = prune(sink, settings, dry_run=args.dry_run, emit=_emit, lock=True)
        rows = [[d.entry.name, d.entry.state.value, "keep" if d.keep else "DELETE", ", ".join(d.reasons)]
                for d in decisions]
        report.append({"sink": sink.name, "dry_run": args.dry_run,
                       "plan": [{"name": r[0], "state": r[1], "action": r[2].lower(), "reasons": r[3]}
                                for r in rows]})
        text.append(f"{sink.name}{' (dry run)' if args.dry_run else ''}\n" +
                    table(["NAME", "STATE", "ACTION", "WHY"], rows))
    if not args.dry_run:
        text += _epochs_after_prune(session, args.sink)
    _out(args, report, "\n\n".join(text))
    return 0


def _epochs_after_prune(session: Session, sink: str | None) -> list[str]:
    """With a keyholder manifest: the key-epoch metric, and the journal's notice for an epoch whose last
    backup was just pruned (its shares may be destroyed)."""
    from vaultops.cli.backup_epochs import compute, load_history, record

    if load_history(session) is None:
        return []
    report, history = compute(session, sink)
    return [f"key epoch {e}: its last backup is gone; the journal says its shares may be destroyed"
            for e in record(session, report, history)]


def cmd_restore(session: Session, args: argparse.Namespace) -> int:
    from vaultops.errors import UsageError
    from vaultops.services.backup import identity
    from vaultops.services.backup.formats import get_format
    from vaultops.services.backup.restore import plan_restore, restore

    cfg, settings = _context(session)
    clients = session.clients()
    if args.file:
        return _restore_file(session, args, settings, clients)
    sink = _pick_sink(cfg, settings, args.sink)
    name = _name_or_newest(sink, settings, args.name)
    identities = _identities(args)  # read before the confirmation: stdin may carry it
    plan = plan_restore(sink, name, clients)
    notice(args, plan.warning(f"{cfg.cluster_name} ({plan.target_cluster_id or '?'})"))
    epoch_text, epoch = _restore_epoch(session, plan.manifest)
    notice(args, epoch_text)
    if not plan.same_cluster:
        notice(args, "Note: unseal the restored cluster with the ORIGINAL cluster's shares.")
    if not (plan.same_cluster or args.force):
        raise UsageError("this backup belongs to another cluster", hint="pass --force after reading the warning")
    if not args.yes:
        _confirm(cfg.cluster_name)
    fmt = get_format(plan.manifest.kind, settings)
    if fmt.reads_through_vault:
        identity.login(clients, {"method": "token"}, cfg, warn=lambda m: None)
    if fmt.restore_notice:
        notice(args, fmt.restore_notice)
    source = fmt.source(clients)
    res = restore(plan, sink, source, force=args.force, settings=settings, identities=identities)
    _journal(session, "backup.restore", {"name": name, "node": res.node, "forced": res.forced,
                                            "seconds": round(res.seconds, 2), "epoch": epoch})
    _out(args, {"name": res.name, "node": res.node, "forced": res.forced, "seconds": res.seconds},
         f"restored {res.name} through {res.node} in {res.seconds:.1f}s" +
         ("\nthe nodes will seal themselves: unseal with the ORIGINAL cluster's shares" if res.forced else ""))
    return 0


def _restore_epoch(session: Session, manifest: Any) -> tuple[str, int | None]:
    from vaultops.cli.backup_epochs import load_history
    from vaultops.services.backup.keyepoch import restore_notice

    return restore_notice(manifest, load_history(session))


def _restore_file(session: Session, args: argparse.Namespace, settings: Any, clients: Any) -> int:
    from pathlib import Path

    from vaultops.services.backup import identity
    from vaultops.services.backup.formats import get_format
    from vaultops.services.backup.restore import FORCE_WARNING, SAME_WARNING, restore_file

    cfg = session.config
    tmpl = FORCE_WARNING if args.force else SAME_WARNING
    notice(args, tmpl.format(target=cfg.cluster_name, source=f"the cluster that wrote {args.file}",
                             time="the snapshot's time"))
    if not args.yes:
        _confirm(cfg.cluster_name)
    fmt = get_format(settings.source, settings)
    if fmt.reads_through_vault:
        identity.login(clients, {"method": "token"}, cfg, warn=lambda m: None)
    res = restore_file(Path(args.file), fmt.source(clients),
                       force=args.force, settings=settings)
    _journal(session, "backup.restore", {"file": str(args.file), "node": res.node, "forced": res.forced})
    _out(args, {"file": args.file, "node": res.node, "forced": res.forced, "seconds": res.seconds},
         f"restored {args.file} through {res.node} in {res.seconds:.1f}s")
    return 0


def _confirm(cluster: str) -> None:
    from vaultops.errors import UsageError

    if not sys.stdin.isatty():
        raise UsageError("restore needs confirmation", hint="pass --yes when running without a terminal")
    answer = ask(f"Type the cluster name ({cluster}) to continue: ")
    if answer.strip() != cluster:
        raise UsageError("not confirmed: nothing was restored", hint="type the cluster name exactly")


def _journal(session: Session, action: str, details: dict[str, Any], outcome: str = "ok") -> None:
    session.journal.append(action, outcome=outcome, cluster=session.config.cluster_name, details=details)


def cmd_drill(session: Session, args: argparse.Namespace) -> int:
    from vaultops.cli.backup_drill import cmd_drill as drill

    return drill(session, args)


def cmd_epochs(session: Session, args: argparse.Namespace) -> int:
    from vaultops.cli.backup_epochs import cmd_epochs as epochs

    return epochs(session, args)


def cmd_policy(session: Session, args: argparse.Namespace) -> int:
    from vaultops.services.backup.identity import policy_text

    print(policy_text(), end="")
    return 0
