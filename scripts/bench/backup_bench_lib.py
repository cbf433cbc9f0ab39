"""What backup_stream.py needs besides its cases: a restartable moto server, timing, filling a sandbox."""

from __future__ import annotations

import base64
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

BIN = Path(sys.executable).parent
AWS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Moto:
    """A moto server; restarted between large runs because it keeps every upload in memory."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = free_port()

    def start(self) -> None:
        self.proc = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        self.client().create_bucket(Bucket="bench")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)

    def restart(self) -> None:
        self.stop()
        self.start()

    def cpu(self) -> float:
        """CPU seconds the moto server has used so far (it is one process)."""
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> Any:
        import boto3
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1")


def fill(box: Any, start: int, count: int, value_kib: int) -> None:
    """`count` kv entries of `value_kib` KiB of incompressible text, written concurrently."""
    client = next(c for c in box.clients() if c.ha.health().status_code == 200)

    def put(i: int) -> None:
        value = base64.b64encode(os.urandom(value_kib * 1024 * 3 // 4)).decode()
        for attempt in range(20):
            try:
                client.write(f"bench/item-{i:05d}", {"v": value})
                return
            except Exception:
                if attempt == 19:
                    raise
                time.sleep(0.5)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(put, range(start, start + count)))


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def paired(n: int, *cases: Callable[[], float]) -> list[float]:
    """Interleave the cases so all see the same machine load (it is shared); the median of each."""
    runs: list[list[float]] = [[] for _ in cases]
    for _ in range(n):
        for i, case in enumerate(cases):
            runs[i].append(case())
    return [statistics.median(r) for r in runs]
