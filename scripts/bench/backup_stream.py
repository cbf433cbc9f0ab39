#!/usr/bin/env python3
"""Benchmark: streamed, verified (and encrypted) `vaultops backup run` against its halves. Prints ratios.

All in one run, on a throwaway single-node sandbox filled with kv data, each side timed as the
process a cron job runs (interpreter and imports included on both sides):
  1. local:   `vaultops backup run` to a local dir  vs  `bao operator raft snapshot save`   (target <= 1.10)
              floor, same run: the server's stream read to nowhere; interpreter + imports
  2. S3 on loopback (moto, no link): vs bao save + a boto3 upload_file process (printed, no target: moto
              burns its CPU on the same two cores, nothing waits on I/O)
  3. S3 behind a cloud-like link (vaultops.testing.netem: RTT and one shared bottleneck each way), per
     link speed, everything through the same proxy:
              streamed = `vaultops backup run` to S3
              halves   = `bao … snapshot save /dev/null` alone, and the saved file's upload alone
                         (a boto3 upload_file process) through the same link
              streamed / max(halves)            (target <= 1.15: the overlap a 2-stage pipeline allows)
              streamed / naive (save; upload)   (printed beside: the physical bound is about
                                                 max/(sum) of the halves)
  4. encryption (backup.encryption, age): encrypted streamed / plain streamed, locally and per link
              (target <= 1.10)
  5. memory:  peak RSS growth of an encrypted run to local + S3 (VmHWM in a child), at every data
              size, up to a >= 1 GB snapshot (target <= 64 MiB)

    .venv/bin/python scripts/bench/backup_stream.py [--mb 210] [--large-mb 1100] [--repeat 3]
                                                    [--links 1000:20,200:20]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from backup_bench_lib import AWS, BIN, Moto, fill, paired, timed  # noqa: E402

from vaultops.crypto.agekeys import X25519Identity  # noqa: E402
from vaultops.testing.netem import LinkProxy  # noqa: E402
from vaultops.testing.sandbox import start_sandbox  # noqa: E402

VALUE_KIB = 512
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


class Bench:
    def __init__(self, box: Any, work: Path, env: dict[str, str], moto: Moto, repeat: int,
                 concurrency: int | None = None) -> None:
        self.box, self.work, self.env, self.moto, self.repeat = box, work, env, moto, repeat
        self.concurrency = concurrency
        self.recipient = X25519Identity.generate().recipient.text
        self.bao = str(BIN / "bao")

    def config(self, sinks: list[dict[str, Any]], *, encrypted: bool = False) -> Path:
        data = yaml.safe_load(self.box.config_path.read_text())
        token = self.work / "token"
        token.write_text(self.box.root_token)
        token.chmod(0o600)
        data["cluster"]["token_file"] = str(token)
        data["journal"] = {"path": str(self.work / "journal.jsonl")}
        data["backup"] = {"sinks": sinks, "lock_file": str(self.work / "lock"),
                          "state_file": str(self.work / "state.json")}
        if encrypted:
            data["backup"]["encryption"] = {"recipients": [self.recipient]}
        path = self.work / f"vaultops-{len(list(self.work.glob('vaultops-*.yaml')))}.yaml"
        path.write_text(yaml.safe_dump(data))
        return path

    def run_cmd(self, cfg: Path) -> list[str]:
        return [str(BIN / "vaultops"), "--config", str(cfg), "backup", "run"]

    def s3(self, endpoint: str) -> dict[str, Any]:
        return {"type": "s3", "bucket": "bench", "endpoint_url": endpoint, "region": "us-east-1", "part_size_mib": 8,
                **({"concurrency": self.concurrency} if self.concurrency else {})}

    def save(self, target: str) -> float:
        return timed([self.bao, "operator", "raft", "snapshot", "save", target], self.env)

    # -- 1. local ------------------------------------------------------------------------
    def local(self) -> dict[str, float]:
        out = self.work / "local"
        plain, enc = (self.run_cmd(self.config([{"type": "local", "path": str(out)}], encrypted=e))
                      for e in (False, True))

        def ours(cmd: list[str]) -> Any:
            def go() -> float:
                shutil.rmtree(out, ignore_errors=True)
                return timed(cmd, self.env)
            return go

        snap = self.work / "bao.snap"

        def theirs() -> float:
            snap.unlink(missing_ok=True)
            return self.save(str(snap))

        med = paired(self.repeat, ours(plain), theirs, ours(enc))
        return {"ours": med[0], "bao": med[1], "encrypted": med[2]}

    def floor(self) -> tuple[float, float]:
        """(the raw snapshot stream read to nowhere, python + the backup run's imports), medians."""
        import urllib3

        client = self.box.clients()[0]
        pool = urllib3.PoolManager()

        def raw() -> float:
            t0 = time.perf_counter()
            resp = pool.request("GET", f"{client.address}/v1/sys/storage/raft/snapshot", preload_content=False,
                                headers={"X-Vault-Token": self.box.root_token})
            for _ in resp.stream(1 << 20):
                pass
            resp.release_conn()
            return time.perf_counter() - t0

        imports = [sys.executable, "-c", "import vaultops.cli.backup_cmd, vaultops.services.backup.runner"]
        return (statistics.median(raw() for _ in range(self.repeat)),
                statistics.median(timed(imports, self.env) for _ in range(self.repeat)))

    # -- 2. S3 on loopback ---------------------------------------------------------------
    def s3_loopback(self) -> dict[str, float]:
        cmd = self.run_cmd(self.config([self.s3(self.moto.endpoint)]))
        target = self.work / "naive.snap"
        cpu: list[float] = []

        def ours() -> float:
            self.moto.restart()
            before = self.moto.cpu()
            elapsed = timed(cmd, self.env)
            cpu.append(self.moto.cpu() - before)
            return elapsed

        def naive() -> float:
            self.moto.restart()
            target.unlink(missing_ok=True)
            return self.save(str(target)) + timed([sys.executable, "-c", UPLOAD, self.moto.endpoint, str(target)],
                                                  self.env)

        a, b = paired(self.repeat, ours, naive)
        return {"ours": a, "naive": b, "moto_cpu": statistics.median(cpu)}

    # -- 3./4. S3 behind a link ----------------------------------------------------------
    def shaped(self, mbit: int, rtt_ms: int) -> dict[str, float]:
        rate = mbit * 1_000_000 // 8
        with LinkProxy(("127.0.0.1", self.moto.port), latency=rtt_ms / 1000, rate=rate, up_rate=rate) as link:
            endpoint = f"http://127.0.0.1:{link.port}"
            plain = self.run_cmd(self.config([self.s3(endpoint)]))
            enc = self.run_cmd(self.config([self.s3(endpoint)], encrypted=True))
            saved = self.work / "linked.snap"
            saved.unlink(missing_ok=True)
            self.save(str(saved))   # the file the upload half sends (same data: the cluster is idle)
            upload = [sys.executable, "-c", UPLOAD, endpoint, str(saved)]

            def fresh(fn: Any) -> Any:
                def go() -> float:
                    self.moto.restart()
                    return fn()
                return go

            med = paired(self.repeat, fresh(lambda: timed(plain, self.env)), lambda: self.save("/dev/null"),
                         fresh(lambda: timed(upload, self.env)), fresh(lambda: timed(enc, self.env)),
                         fresh(lambda: self.save(str(self.work / "naive.snap")) + timed(upload, self.env)))
        return dict(zip(("streamed", "save", "upload", "encrypted", "naive"), med, strict=True))

    # -- 5. memory -------------------------------------------------------------------------
    def peak_rss(self) -> dict[str, Any]:
        self.moto.restart()
        out = self.work / "rss-local"
        cfg = self.config([{"type": "local", "path": str(out)}, self.s3(self.moto.endpoint)], encrypted=True)
        res = subprocess.run([sys.executable, "-c", RSS_CHILD, str(cfg)], env=self.env, check=True,
                             capture_output=True, text=True)
        data = json.loads(res.stdout.strip().splitlines()[-1])
        data["growth_mib"] = (data["hwm_kib"] - data["before_kib"]) / 1024
        shutil.rmtree(out, ignore_errors=True)
        self.moto.stop()   # it keeps the upload in memory
        self.moto.start()
        return data


def report(results: dict[str, Any], concurrency: int | None) -> None:
    print(f"\nS3 sink: part_size_mib 8, concurrency {concurrency or 'default (2)'}")
    print(f"snapshot size: {results['rss'][-1]['size'] / 1e6:.0f} MB largest "
          f"({', '.join(str(round(d['size'] / 1e6)) for d in results['rss'])} MB measured for memory); "
          f"timed cases: {results['timed_size'] / 1e6:.0f} MB")
    if "local" in results:
        _report_local(results)
    if "s3" in results:
        s3 = results["s3"]
        print(f"s3 loopback: vaultops {s3['ours']:.2f}s vs bao save + upload_file process {s3['naive']:.2f}s -> "
              f"ratio {s3['ours'] / s3['naive']:.2f} (no target: moto used {s3['moto_cpu']:.2f} CPU s per upload "
              f"on the same {os.cpu_count()} cores)")
    for label, r in results["links"].items():
        half = max(r["save"], r["upload"])
        print(f"s3 @ {label}: streamed {r['streamed']:.2f}s; halves alone: save {r['save']:.2f}s, upload "
              f"{r['upload']:.2f}s -> streamed/max(halves) {r['streamed'] / half:.2f} (target <= 1.15)")
        print(f"        naive (save; upload) {r['naive']:.2f}s -> streamed/naive {r['streamed'] / r['naive']:.2f} "
              f"(bound max/sum of halves {half / (r['save'] + r['upload']):.2f}); encrypted {r['encrypted']:.2f}s "
              f"-> encrypted/plain {r['encrypted'] / r['streamed']:.2f} (target <= 1.10)")
    for d in results["rss"]:
        print(f"rss   : encrypted run to local + S3, snapshot {d['size'] / 1e6:.0f} MB: peak growth "
              f"{d['growth_mib']:.1f} MiB (baseline {d['before_kib'] / 1024:.0f} MiB, VmHWM "
              f"{d['hwm_kib'] / 1024:.0f} MiB; target <= 64)")


def _report_local(results: dict[str, Any]) -> None:
    loc, (raw, start) = results["local"], results["floor"]
    print(f"local : vaultops backup run {loc['ours']:.2f}s vs bao snapshot save {loc['bao']:.2f}s -> "
          f"ratio {loc['ours'] / loc['bao']:.2f} (target <= 1.10)")
    print(f"        floor: the server's stream alone {raw:.2f}s ({raw / loc['bao']:.2f}x the bao save); "
          f"interpreter + imports {start:.2f}s ({start / loc['bao']:.2f}x)")
    print(f"        encrypted {loc['encrypted']:.2f}s -> encrypted/plain {loc['encrypted'] / loc['ours']:.2f} "
          "(target <= 1.10)")


def installed_bytecode() -> None:
    """Start the timed processes like an installed vaultops: pip compiles a wheel's modules at
    install time, but this checkout is an editable install and the environment may set
    PYTHONDONTWRITEBYTECODE, which makes every start compile ~70 modules again (0.05-0.09 s here).
    So compile them once, beside their sources (__pycache__, ignored by git), before timing.
    (Not a PYTHONPYCACHEPREFIX: Python would then look there for every module's bytecode, the
    standard library's and the dependencies' too, and compile all of those at every start.)"""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "vaultops")], env=env, check=True,
                   stdout=subprocess.DEVNULL)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=210, help="data for the timed cases (default 210)")
    ap.add_argument("--large-mb", type=int, default=1100, help="data for the memory case (default 1100; 0: skip)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--links", default="1000:20,200:20", help="MBIT:RTT_MS,... (default 1000:20,200:20)")
    ap.add_argument("--s3-concurrency", type=int, help="the S3 sink's parts in flight (default: the sink's default)")
    ap.add_argument("--only", default="local,s3,links,rss", help="cases to run (default: all)")
    ap.add_argument("--no-bytecode", action="store_true",
                    help="do not byte-compile vaultops before timing "
                         "(under PYTHONDONTWRITEBYTECODE every start then compiles it)")
    args = ap.parse_args()
    os.environ.update(AWS)
    work = Path(tempfile.mkdtemp(prefix="vaultops-bench-"))
    env = {**os.environ, **AWS, "VAULTOPS_STATE_DIR": str(work / "state")}
    if not args.no_bytecode:
        installed_bytecode()
    box = start_sandbox(work / "sandbox", name="bench", nodes=1)
    moto = Moto(work)
    results: dict[str, Any] = {"rss": [], "links": {}}
    try:
        moto.start()
        env.update({"BAO_ADDR": box.clients()[0].address, "BAO_TOKEN": box.root_token})
        bench = Bench(box, work, env, moto, args.repeat, args.s3_concurrency)
        only = set(args.only.split(","))
        box.clients()[0].write("sys/mounts/bench", {"type": "kv"})
        entries = args.mb * 1024 // VALUE_KIB
        fill(box, 0, entries // 2, VALUE_KIB)
        if "rss" in only:
            results["rss"].append(bench.peak_rss())
        fill(box, entries // 2, entries - entries // 2, VALUE_KIB)
        print(f"filled {entries} x {VALUE_KIB} KiB", flush=True)
        results["rss"].append(bench.peak_rss())
        results["timed_size"] = results["rss"][-1]["size"]
        if "local" in only:
            results["local"] = bench.local()
            results["floor"] = bench.floor()
        if "s3" in only:
            results["s3"] = bench.s3_loopback()
        for spec in args.links.split(",") if "links" in only else []:
            mbit, rtt = (int(x) for x in spec.split(":"))
            label = f"{mbit / 1000:g} Gbit/s + {rtt} ms RTT" if mbit >= 1000 else f"{mbit} Mbit/s + {rtt} ms RTT"
            results["links"][label] = bench.shaped(mbit, rtt)
            print(f"measured {label}", flush=True)
        if args.large_mb > args.mb and "rss" in only:
            more = args.large_mb * 1024 // VALUE_KIB - entries
            fill(box, entries, more, VALUE_KIB)
            results["rss"].append(bench.peak_rss())
    finally:
        moto.stop()
        box.stop()
        shutil.rmtree(work, ignore_errors=True)
    report(results, args.s3_concurrency)
    print("python: " + ("vaultops not byte-compiled before timing (--no-bytecode)" if args.no_bytecode
                        else "vaultops' modules byte-compiled once, as an installed wheel's are"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
