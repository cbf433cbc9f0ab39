"""Real local OpenBao clusters on 127.0.0.1 for demos and tests.

A sandbox lives in one folder: sandbox.json (what was started), vaultops.yaml
(ready to use), SANDBOX-SECRETS.do-not-use-in-production.json (0600: shares
and root token), and a folder per node. `down` stops exactly the processes
recorded there and removes the folder.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import stat
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vaultops.config import Config, default_state_dir, parse_config_file
from vaultops.drivers.local import LocalDriver
from vaultops.errors import SandboxError, VaultOpsError
from vaultops.files.atomic import atomic_write_text
from vaultops.names import Kind, check_name
from vaultops.retry import poll
from vaultops import releases as binaries
from vaultops.services.sandbox import postgres

SECRETS_NAME = "SANDBOX-SECRETS.do-not-use-in-production.json"
MARKER = ".vaultops-sandbox"
DOMAIN = "vaultops.test"
SHARES, THRESHOLD = 5, 3
DEMO_KEYHOLDERS = ("alice", "bob", "carol", "dave", "erin")

Progress = Callable[[str], None]


@dataclass
class SandboxSpec:
    name: str = "default"
    nodes: int = 3
    storage: str = "raft"
    version: str | None = None
    sealed: bool = False
    # With sealed: leave the followers unjoined (a fresh cluster's first unseal) instead of the
    # default "after an outage" (every node joined as a voter, then all restarted sealed).
    cold: bool = False
    tls: bool = False
    acme_config: str | None = None  # YAML with a tls:-shaped mapping: certificates from that ACME server
    # Raft timing (production guidance: 1). 0 leaves it unset: the server's slow default (elections
    # 15-22 s after a full restart) -- only the leader-election benchmark's anchor asks for that.
    performance_multiplier: int = 1


@dataclass
class NodeRecord:
    name: str
    api_port: int
    cluster_port: int
    dir: str


@dataclass
class SandboxRecord:
    spec: SandboxSpec
    nodes: list[NodeRecord]
    version: str
    pg_dir: str | None = None
    pg_port: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def sandboxes_root() -> Path:
    return default_state_dir() / "sandboxes"


def sandbox_dir(name: str, root: Path | None = None) -> Path:
    """The folder of sandbox *name*; a name that is not plain (a path, '..', '-x') is refused here."""
    return (root or sandboxes_root()) / check_name(Kind.SANDBOX, name)


def create_folder(folder: Path) -> None:
    """Make a sandbox folder (0700) and mark it as ours: `down` removes no folder without the mark."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.mkdir(mode=0o700)
    fd = os.open(folder / MARKER, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("made by vaultops sandbox up; vaultops sandbox down removes this folder\n")


def check_removable(folder: Path) -> None:
    """Refuse, before anything is stopped or removed, a folder `up` did not make right here.

    It must be a real directory (not a symlink), directly under the sandboxes folder once both are
    resolved, and hold the mark `up` wrote (a regular file, not a symlink).
    """
    hint = "vaultops only removes sandboxes it made; remove anything else by hand"
    if folder.is_symlink() or not folder.is_dir():
        raise SandboxError(f"{folder} is not a sandbox folder (a symbolic link or not a directory); left alone",
                           hint=hint)
    if Path(os.path.realpath(folder)).parent != Path(os.path.realpath(folder.parent)):
        raise SandboxError(f"{folder} is not directly under {folder.parent}; left alone", hint=hint)
    try:
        marked = stat.S_ISREG(os.lstat(folder / MARKER).st_mode)
    except OSError:
        marked = False
    if not marked:
        raise SandboxError(f"{folder} was not made by 'vaultops sandbox up' (no {MARKER}); left alone", hint=hint)


_taken: set[int] = set()


def free_port() -> int:
    """A bindable port BELOW the kernel's ephemeral range.

    Port 0 would hand out an ephemeral port, which any outgoing connection on
    the machine may grab before the server binds it; ports picked here are only
    raced by other listeners choosing the same way.
    """
    low, high = _ephemeral_range()
    for _ in range(200):
        port = random.randrange(max(1024, low - 12000), low)
        if port in _taken:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _taken.add(port)
        return port
    raise SandboxError("no free port found below the ephemeral range", hint="stop other sandboxes")


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = (int(v) for v in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def node_name(i: int) -> str:
    return f"node{i}"


class Sandbox:
    """A handle on one sandbox folder."""

    def __init__(self, folder: Path) -> None:
        self.dir = folder
        self.record_file = folder / "sandbox.json"
        self.config_path = folder / "vaultops.yaml"
        self.secrets_path = folder / SECRETS_NAME

    # -- records -------------------------------------------------------------
    @property
    def record(self) -> SandboxRecord:
        from vaultops.files.loader import CONFIG_CAP, load_json

        if not self.record_file.exists():
            raise SandboxError(f"no sandbox at {self.dir}", hint="start one: vaultops sandbox up")
        return load_json(self.record_file, SandboxRecord, cap=CONFIG_CAP, error=SandboxError, what="sandbox record",
                         hint="the sandbox record is damaged: stop its processes by hand and remove the folder")

    def save_record(self, rec: SandboxRecord) -> None:
        atomic_write_text(self.record_file, json.dumps(asdict(rec), indent=2) + "\n")

    @property
    def config(self) -> Config:
        return parse_config_file(self.config_path)

    @property
    def secrets(self) -> dict[str, Any]:
        from vaultops.files.loader import SECRET_CAP, read_json, validate
        from vaultops.files.model import SandboxSecrets

        raw = read_json(self.secrets_path, cap=SECRET_CAP, error=SandboxError, what="sandbox secrets file")
        validate(raw, SandboxSecrets, source=str(self.secrets_path), error=SandboxError, yaml=False)
        return dict(raw)

    @property
    def root_token(self) -> str:
        return self.secrets["root_token"]

    @property
    def shares_b64(self) -> list[str]:
        return list(self.secrets["unseal_shares_b64"])

    def drivers(self) -> dict[str, LocalDriver]:
        return {n.name: LocalDriver(n.name, {"type": "local", "dir": n.dir}) for n in self.record.nodes}

    def clients(self, *, token: bool = True, timeout: float = 5.0) -> list[Any]:
        from vaultops.vault import cluster_clients

        return cluster_clients(self.config, token=self.root_token if token else None, use_token=token,
                               timeout=timeout)

    def client(self, node: str, **kwargs: Any) -> Any:
        return next(c for c in self.clients(**kwargs) if c.name == node)

    # -- lifecycle -----------------------------------------------------------
    def stop(self, *, remove: bool = True) -> None:
        """Stop exactly what this sandbox started; remove its folder (only one that `up` made) and
        what it left in a shared state folder (services/sandbox/cleanup.py)."""
        from vaultops.services.sandbox import cleanup

        if remove:
            check_removable(self.dir)
            for nested in cleanup.nested_sandboxes(self.dir / "state" / "rehearsals"):   # kept copies: running
                Sandbox(nested).stop(remove=False)
            self._remove_leftovers()
        if self.record_file.exists():
            rec = self.record
            # All at once: a node that was just stepped down takes ~7 s to exit on SIGTERM.
            threads = [threading.Thread(target=drv.stop, kwargs={"timeout": 15})
                       for drv in self.drivers().values()]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if rec.pg_dir:
                postgres.stop(Path(rec.pg_dir))
        if remove:
            shutil.rmtree(self.dir, ignore_errors=True)

    def _remove_leftovers(self) -> None:
        from vaultops.services.sandbox import cleanup

        # Only a named sandbox of the sandboxes folder: scratch copies (drills, rehearsals) share names.
        if Path(os.path.realpath(self.dir.parent)) != Path(os.path.realpath(sandboxes_root())):
            return
        try:
            state, name = self.config.state_dir, self.record.spec.name
        except VaultOpsError:
            return
        if Path(os.path.realpath(state)).is_relative_to(os.path.realpath(self.dir)):
            return      # inside the folder, removed with it
        for path in cleanup.state_leftovers(state, name):
            path.unlink(missing_ok=True)
        for folder in cleanup.rehearsal_dirs(state, name):
            for nested in cleanup.nested_sandboxes(folder):
                Sandbox(nested).stop(remove=False)
            shutil.rmtree(folder, ignore_errors=True)

    def unseal_all(self, *, shares: list[str] | None = None, timeout: float = 60.0) -> None:
        from vaultops.services.sandbox.bootstrap import unseal_nodes

        unseal_nodes(self.clients(token=False), shares or self.shares_b64[:THRESHOLD], timeout=timeout)

    def restart_sealed(self, *, timeout: float = 60.0) -> None:
        """Kill and restart every node (an outage); return once each answers sealed, initialised, progress 0."""
        drivers = self.drivers()
        for d in drivers.values():
            d.kill()
        for d in drivers.values():
            d.start()
        for n in self.record.nodes:
            wait_port(n.api_port)
        clients = self.clients(token=False)

        def all_sealed() -> bool | None:
            return all((s := c.seal.status()).initialized and s.sealed and s.progress == 0 for c in clients) or None
        poll(all_sealed, timeout=timeout, interval=0.05, what="nodes did not come back sealed", error=SandboxError,
             hint="see the nodes' bao.log")

    def wait_active(self, timeout: float = 30.0) -> str:
        """Until a node is active: a second or two after the unseal (performance_multiplier 1)."""
        from vaultops.services.sandbox.bootstrap import wait_active

        return wait_active(self.clients(token=False), timeout=timeout)


def up(spec: SandboxSpec, *, root: Path | None = None, progress: Progress = lambda _m: None) -> Sandbox:
    """Start, initialise (5 shares / threshold 3) and optionally unseal a sandbox."""
    from vaultops.services.sandbox.bootstrap import bootstrap

    folder = sandbox_dir(spec.name, root)
    if os.path.lexists(folder):
        raise SandboxError(f"sandbox {spec.name!r} already exists at {folder}",
                           hint=f"use it, or remove it: vaultops sandbox down --name {spec.name}")
    _validate(spec)
    create_folder(folder)
    box = Sandbox(folder)
    try:
        bootstrap(box, spec, progress)
    except (VaultOpsError, OSError, KeyboardInterrupt):
        box.stop()
        raise
    return box


def _validate(spec: SandboxSpec) -> None:
    if spec.storage not in ("raft", "postgresql"):
        raise SandboxError(f"storage {spec.storage!r} is not offered", hint="use raft or postgresql")
    if not 1 <= spec.nodes <= 7:
        raise SandboxError(f"{spec.nodes} nodes is out of range", hint="use 1 to 7 nodes")


def list_sandboxes(root: Path | None = None) -> list[Sandbox]:
    base = root or sandboxes_root()
    if not base.is_dir():
        return []
    return [Sandbox(p) for p in sorted(base.iterdir()) if is_sandbox(p)]


def is_sandbox(folder: Path) -> bool:
    try:
        check_removable(folder)
    except SandboxError:
        return False
    return (folder / "sandbox.json").exists()


def binary_for(spec: SandboxSpec) -> tuple[Path, str]:
    path = binaries.ensure(spec.version)
    return path, spec.version or binaries.binary_version(path)


def wait_port(port: int, timeout: float = 30.0) -> None:
    def listening() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    poll(listening, timeout=timeout, interval=0.05, what=f"nothing listens on 127.0.0.1:{port}",
         tolerate=(OSError,), error=SandboxError, hint="see the node's bao.log")
