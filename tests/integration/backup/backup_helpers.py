"""Helpers for the backup integration tests (a uniquely named module: every conftest is called conftest)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from vaultops.config import parse_config_file
from vaultops.testing.sandbox import Sandbox

MOTO = Path(sys.executable).parent / "moto_server"
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoServer:
    def __init__(self, log_dir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._log = (log_dir / f"moto-{self.port}.log").open("wb")
        self.proc = subprocess.Popen([str(MOTO), "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("moto_server did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()

    def client(self) -> Any:
        import boto3
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")


def active_client(box: Sandbox) -> Any:
    for c in box.clients():
        if c.ha.health().status_code == 200:
            return c
    raise RuntimeError("no active node")


def read_retry(box: Sandbox, path: str, timeout: float = 60.0) -> dict[str, Any]:
    """Right after a restore the cluster is busy for a moment (timeouts, 5xx, leader change)."""
    from vaultops.errors import VaultError

    deadline = time.monotonic() + timeout
    while True:
        try:
            return active_client(box).read(path)
        except (VaultError, RuntimeError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def write_retry(client: Any, path: str, body: dict[str, Any], timeout: float = 20.0) -> None:
    """kv-v2 answers 400 'upgrade' for about a second after it is mounted."""
    from vaultops.errors import VaultError

    deadline = time.monotonic() + timeout
    while True:
        try:
            client.write(path, body)
            return
        except VaultError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def backup_config(box: Sandbox, folder: Path, backup: dict[str, Any], *, token: str | None = None) -> Path:
    """A vaultops.yaml for *box* with our backup section and a private journal."""
    data = yaml.safe_load(box.config_path.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    token_file = folder / "token"
    token_file.write_text(token if token is not None else box.root_token)
    token_file.chmod(0o600)
    data["cluster"]["token_file"] = str(token_file)
    data["journal"] = {"path": str(folder / "journal.jsonl")}
    data["backup"] = {"lock_file": str(folder / "backup.lock"), "state_file": str(folder / "last-run.json"),
                      **backup}
    path = folder / "vaultops.yaml"
    path.write_text(yaml.safe_dump(data))
    parse_config_file(path)  # fail early on a bad test config
    return path


def s3_sink(moto: MotoServer, bucket: str, **extra: Any) -> dict[str, Any]:
    return {"type": "s3", "bucket": bucket, "prefix": "vault", "region": "us-east-1",
            "endpoint_url": moto.endpoint, **extra}

