#!/usr/bin/env python3
"""Benchmark: streamed, verified `vaultops backup run` vs the reference tools. Prints ratios; no asserts.

All in one run, on a throwaway single-node sandbox filled with >= 200 MB of kv data:
  1. local:  `vaultops backup run` to a local dir   vs  `bao operator raft snapshot save`     (target <= 1.1x)
  2. S3:     `vaultops backup run` to S3 (moto)     vs  bao save + boto3 upload_file          (target <= 0.8x)
            Both sides are timed as the processes a cron job runs: the upload_file runs in its own
            Python process, as vaultops does (interpreter and boto3 start-up included on both sides).
            The same baseline with upload_file inside this already-warm process is printed too.
  3. memory: peak RSS growth of a vaultops run at two data sizes (VmHWM in a child process) (target <= 64 MB)
  4. floor:  what bounds the local ratio, same run: the server's stream read and thrown away
            (no disk, no verification), and the interpreter + imports of a `backup run`.

    .venv/bin/python scripts/bench/backup_stream.py [--mb 200] [--repeat 3]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from vaultops.testing.sandbox import start_sandbox  # noqa: E402

BIN = Path(sys.executable).parent
VALUE_KIB = 512
AWS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}

RSS_CHILD = r"""
import json, sys
def kib(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1])
from vaultops.services.backup.runner import run_backup
from vaultops.session import Session
session = Session(config_path=sys.argv[1]); cfg, settings, journal = session.config, session.backup_settings, session.journal
import boto3, botocore.auth  # noqa: F401 - count import memory before the baseline, not as growth
before = kib("VmRSS:")
result = run_backup(cfg, settings, emit=lambda *a, **k: None, connect=session.new_clients, journal=journal)
print(json.dumps({"ok": result.ok, "size": result.size, "before_kib": before, "hwm_kib": kib("VmHWM:")}))
"""


UPLOAD = ("import sys, boto3; boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1')"
          ".upload_file(sys.argv[2], 'bench', 'naive.snap')")


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


def fill(box: Any, start: int, count: int) -> None:
    """`count` kv entries of 512 KiB of incompressible text, written concurrently."""
    client = next(c for c in box.clients() if c.ha.health().status_code == 200)

    def put(i: int) -> None:
        value = base64.b64encode(os.urandom(VALUE_KIB * 1024 * 3 // 4)).decode()
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


def config(box: Any, folder: Path, sinks: list[dict[str, Any]]) -> Path:
    data = yaml.safe_load(box.config_path.read_text())
    token = folder / "token"
    token.write_text(box.root_token)
    token.chmod(0o600)
    data["cluster"]["token_file"] = str(token)
    data["journal"] = {"path": str(folder / "journal.jsonl")}
    data["backup"] = {"sinks": sinks, "lock_file": str(folder / "lock"), "state_file": str(folder / "state.json")}
    path = folder / f"vaultops-{len(list(folder.glob('vaultops-*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def paired(n: int, ours: Any, theirs: Any) -> tuple[float, float]:
    """Alternate the two so both see the same machine load (it is shared); medians of each."""
    a, b = [], []
    for _ in range(n):
        a.append(ours())
        b.append(theirs())
    return statistics.median(a), statistics.median(b)


def bench_local(box: Any, work: Path, env: dict[str, str], repeat: int) -> tuple[float, float]:
    out = work / "local"
    cfg = config(box, work, [{"type": "local", "path": str(out)}])
    vaultops = [str(BIN / "vaultops"), "--config", str(cfg), "backup", "run"]

    def ours() -> float:
        shutil.rmtree(out, ignore_errors=True)
        return timed(vaultops, env)

    def theirs() -> float:
        target = work / "bao.snap"
        target.unlink(missing_ok=True)
        return timed([str(BIN / "bao"), "operator", "raft", "snapshot", "save", str(target)], env)

    return paired(repeat, ours, theirs)


def floor(box: Any, env: dict[str, str], repeat: int) -> tuple[float, float]:
    """Median seconds of (the raw snapshot stream read to nowhere, python + backup imports)."""
    import urllib3

    client = box.clients()[0]
    pool = urllib3.PoolManager()

    def raw() -> float:
        t0 = time.perf_counter()
        resp = pool.request("GET", f"{client.address}/v1/sys/storage/raft/snapshot", preload_content=False,
                            headers={"X-Vault-Token": box.root_token})
        for _ in resp.stream(1 << 20):
            pass
        resp.release_conn()
        return time.perf_counter() - t0

    imports = [sys.executable, "-c", "import vaultops.cli.backup_cmd, vaultops.services.backup.runner"]
    return (statistics.median(raw() for _ in range(repeat)),
            statistics.median(timed(imports, env) for _ in range(repeat)))


def bench_s3(box: Any, work: Path, env: dict[str, str], moto: Moto, repeat: int) -> tuple[float, float, float, float]:
    cfg = config(box, work, [{"type": "s3", "bucket": "bench", "endpoint_url": moto.endpoint,
                              "region": "us-east-1", "part_size_mib": 8}])
    vaultops = [str(BIN / "vaultops"), "--config", str(cfg), "backup", "run"]
    target = work / "naive.snap"
    save = [str(BIN / "bao"), "operator", "raft", "snapshot", "save", str(target)]

    moto_cpu: list[float] = []

    def ours() -> float:
        moto.restart()
        before = moto.cpu()
        elapsed = timed(vaultops, env)
        moto_cpu.append(moto.cpu() - before)
        return elapsed

    def naive() -> float:
        moto.restart()
        target.unlink(missing_ok=True)
        return timed(save, env) + timed([sys.executable, "-c", UPLOAD, moto.endpoint, str(target)], env)

    def naive_warm() -> float:
        moto.restart()
        target.unlink(missing_ok=True)
        t0 = time.perf_counter()
        subprocess.run(save, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        moto.client().upload_file(str(target), "bench", "naive.snap")
        return time.perf_counter() - t0

    a, b, c = [], [], []
    for _ in range(repeat):  # interleaved, so all three see the same machine load
        a.append(ours())
        b.append(naive())
        c.append(naive_warm())
    return statistics.median(a), statistics.median(b), statistics.median(c), statistics.median(moto_cpu)


def peak_rss(box: Any, work: Path, env: dict[str, str], moto: Moto) -> dict[str, Any]:
    moto.restart()
    cfg = config(box, work, [{"type": "local", "path": str(work / "rss-local")},
                             {"type": "s3", "bucket": "bench", "endpoint_url": moto.endpoint, "region": "us-east-1"}])
    res = subprocess.run([sys.executable, "-c", RSS_CHILD, str(cfg)], env=env, check=True, capture_output=True,
                         text=True)
    data = json.loads(res.stdout.strip().splitlines()[-1])
    data["growth_mib"] = (data["hwm_kib"] - data["before_kib"]) / 1024
    shutil.rmtree(work / "rss-local", ignore_errors=True)
    return data


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=210, help="data to write into the sandbox (default 210)")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    os.environ.update(AWS)
    work = Path(tempfile.mkdtemp(prefix="vaultops-bench-"))
    env = {**os.environ, **AWS, "VAULTOPS_STATE_DIR": str(work / "state")}
    box = start_sandbox(work / "sandbox", name="bench", nodes=1)
    moto = Moto(work)
    try:
        moto.start()
        env.update({"BAO_ADDR": box.clients()[0].address, "BAO_TOKEN": box.root_token})
        client = box.clients()[0]
        client.write("sys/mounts/bench", {"type": "kv"})
        entries = args.mb * 1024 // VALUE_KIB
        half = entries // 2
        t0 = time.perf_counter()
        fill(box, 0, half)
        print(f"filled {half} x {VALUE_KIB} KiB in {time.perf_counter() - t0:.1f}s", flush=True)
        small = peak_rss(box, work, env, moto)
        fill(box, half, entries - half)
        print(f"filled {entries} x {VALUE_KIB} KiB in total", flush=True)
        large = peak_rss(box, work, env, moto)
        ours_l, bao_l = bench_local(box, work, env, args.repeat)
        raw_l, start_l = floor(box, env, args.repeat)
        ours_s, naive_s, warm_s, moto_s = bench_s3(box, work, env, moto, args.repeat)
    finally:
        moto.stop()
        box.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nsnapshot size: {large['size'] / 1e6:.0f} MB (small data set: {small['size'] / 1e6:.0f} MB)")
    print(f"local : vaultops backup run {ours_l:.2f}s vs bao snapshot save {bao_l:.2f}s -> "
          f"ratio {ours_l / bao_l:.2f} (target <= 1.10)")
    print(f"        floor: the server's stream alone takes {raw_l:.2f}s ({raw_l / bao_l:.2f}x the bao save); "
          f"interpreter + imports {start_l:.2f}s; vaultops adds verification, fsync and the manifest")
    print(f"s3    : vaultops backup run {ours_s:.2f}s vs bao save + upload_file process {naive_s:.2f}s -> "
          f"ratio {ours_s / naive_s:.2f} (target <= 0.80)")
    print(f"        (upload_file inside the warm bench process instead: {warm_s:.2f}s -> ratio {ours_s / warm_s:.2f})")
    print(f"        the moto server itself used {moto_s:.2f} CPU s per vaultops upload, on the same "
          f"{os.cpu_count()} cores as OpenBao and vaultops")
    for label, d in (("small", small), ("large", large)):
        print(f"rss   : {label:<5} snapshot {d['size'] / 1e6:.0f} MB: peak growth {d['growth_mib']:.1f} MiB "
              f"(baseline {d['before_kib'] / 1024:.0f} MiB, VmHWM {d['hwm_kib'] / 1024:.0f} MiB; target <= 64)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
