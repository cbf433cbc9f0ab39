#!/usr/bin/env python3
"""Benchmark: ACME renewal against a local Pebble + BIND 9, same run.

Measures (median of --runs):
  renew 3 nodes   `renew(..., force=True)`: concurrent orders, install, SIGHUP reload, verify
  renew 1 node    the same for one node
  minimal script  the acme library used directly as its docs show (one 2-name certificate,
                  DNS-01 by a TSIG update, `poll_and_finalize`), no install/reload
Targets: 3 nodes <= 1.5x one node; one node <= 1.2x the minimal script.

The 3-vs-1 pair is measured twice: against Pebble on loopback, where it answers at once and an
order is nothing but client CPU (three orders on two cores and one GIL), and through a link
with --rtt ms round trips to the CA (vaultops.testing.netem), the shape of a real CA on the
internet, where concurrent orders overlap their waiting.

Nodes are tiny TLS servers that reload on SIGHUP (vaultops.testing.tls_server),
driven by the real local driver. Everything runs on 127.0.0.1 and is stopped at the end.
Usage: .venv/bin/python scripts/bench/tls_renew.py [--runs N] [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DOMAIN = "vaultops.test"
NODES = ["bench1", "bench2", "bench3"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--rtt", type=float, default=40.0, help="round trip to the CA in ms for the WAN pair (40)")
    args = ap.parse_args()

    from vaultops.testing.acme_env import AcmeTestBed, Zone

    with tempfile.TemporaryDirectory(prefix="vaultops-bench-tls-") as tmp:
        base = Path(tmp)
        zones = [Zone(DOMAIN, hosts=NODES + ["lb", "minimal"])]
        # No authorization reuse: every order proves every name, as in the minimal script. No
        # random nonce rejection: it adds retries at random to either side (the library's own
        # retry gives up after one; ours is tested in tests/unit/tls), which is noise here.
        with AcmeTestBed(base / "acme", zones=zones, authz_reuse_percent=0, nonce_reject_percent=0) as bed:
            procs = start_nodes(base)
            try:
                result = measure(bed, base, args.runs)
                result.update(measure_wan(bed, base, args.runs, args.rtt / 1000))
            finally:
                for p in procs:
                    p.terminate()
                    p.wait(10)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for k, v in result.items():
            print(f"{k:28s} {v}")
    return 0


def start_nodes(base: Path) -> list[subprocess.Popen[bytes]]:
    from vaultops.services.sandbox import certs
    from vaultops.testing import tls_server
    from vaultops.testing.acme_env import free_port

    ca, ca_key = certs.make_ca(base)
    procs = []
    for n in NODES:
        d = base / n
        d.mkdir()
        certs.issue(ca, ca_key, [f"{n}.{DOMAIN}"], d / "cert.pem", d / "key.pem")
        port = free_port()
        (d / "port").write_text(str(port))
        p = subprocess.Popen([sys.executable, tls_server.__file__, str(port), str(d / "cert.pem"),
                              str(d / "key.pem"), f"-config={d / 'config.hcl'}"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        (d / "bao.pid").write_text(f"{p.pid}\n")
        procs.append(p)
    from vaultops.testing.acme_env import _wait_port

    for n in NODES:
        _wait_port(int((base / n / "port").read_text()), procs[NODES.index(n)], base / "none", tcp=True)
    return procs


def settings_for(bed: Any, base: Path, names: list[str], directory: str | None = None) -> Any:
    from vaultops.config import parse_config
    from vaultops.services.tls.settings import load_tls_settings

    doc = {"cluster": {"name": "bench", "load_balancer": f"lb.{DOMAIN}"},
           "nodes": [{"name": n, "address": f"https://127.0.0.1:{(base / n / 'port').read_text()}",
                      "tls_server_name": f"{n}.{DOMAIN}", "driver": {"type": "local", "dir": str(base / n)}}
                     for n in names],
           "tls": {"nodes": {n: {"cert_file": str(base / n / "cert.pem"), "key_file": str(base / n / "key.pem")}
                             for n in names},
                   "acme": {"directory": directory or bed.directory_url, "ca_bundle": bed.pebble_ca_file,
                            "account_key_file": str(base / "account.pem")},
                   "dns_provider": bed.dns_provider_settings()}}
    return load_tls_settings(parse_config(doc, path=base / "vaultops.yaml"))


def renew_once(bed: Any, base: Path, names: list[str], directory: str | None = None) -> float:
    from vaultops.dns import get_provider
    from vaultops.services.tls.acme_client import AcmeIssuer
    from vaultops.services.tls.renew import renew
    from vaultops.services.tls.status import drivers_for

    t0 = time.perf_counter()
    settings = settings_for(bed, base, names, directory)
    issuer = AcmeIssuer(settings.acme, get_provider(settings.dns_provider))
    report = renew(settings, drivers=drivers_for(settings), issuer=issuer, force=True, roles={})
    elapsed = time.perf_counter() - t0
    if not report.ok:
        raise SystemExit(f"renewal failed: {report.failures}")
    return elapsed


def minimal_once(bed: Any, base: Path) -> float:
    """The acme library as documented, plus a dnspython TSIG update: the baseline."""
    import dns.query
    import dns.tsigkeyring
    import dns.update
    import josepy as jose
    from acme import challenges, client, crypto_util, errors, messages
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from vaultops.dns.rfc2136 import _read_key

    t0 = time.perf_counter()
    account = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    net = client.ClientNetwork(account, alg=jose.ES256, verify_ssl=bed.pebble_ca_file)
    directory = client.ClientV2.get_directory(bed.directory_url, net)
    acme = client.ClientV2(directory, net)
    try:
        acme.new_account(messages.NewRegistration.from_data(terms_of_service_agreed=True))
    except errors.ConflictError:
        pass
    key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    order = acme.new_order(crypto_util.make_csr(key, [f"minimal.{DOMAIN}", f"lb.{DOMAIN}"]))
    secret, _ = _read_key(Path(bed.tsig_key_file()))
    keyring = dns.tsigkeyring.from_text({"acme-key": secret})
    host, port = bed.dns_server.split(":")
    answers, published = [], []
    for authz in order.authorizations:
        if authz.body.status == messages.STATUS_VALID:
            continue
        challb = next(c for c in authz.body.challenges if isinstance(c.chall, challenges.DNS01))
        name = challb.chall.validation_domain_name(authz.body.identifier.value) + "."
        value = f'"{challb.chall.validation(account)}"'
        upd = dns.update.UpdateMessage(DOMAIN, keyring=keyring, keyalgorithm="hmac-sha256")
        upd.add(name, 60, "TXT", value)
        dns.query.tcp(upd, host, port=int(port), timeout=5)
        answers.append(challb)
        published.append((name, value))
    try:
        for challb in answers:
            acme.answer_challenge(challb, challb.chall.response(account))
        order = acme.poll_and_finalize(order, dt.datetime.now() + dt.timedelta(seconds=60))
    finally:  # left behind, stale values pile up until answers no longer fit in UDP
        for name, value in published:
            upd = dns.update.UpdateMessage(DOMAIN, keyring=keyring, keyalgorithm="hmac-sha256")
            upd.delete(name, "TXT", value)
            dns.query.tcp(upd, host, port=int(port), timeout=5)
    assert "BEGIN CERTIFICATE" in order.fullchain_pem
    return time.perf_counter() - t0


def measure(bed: Any, base: Path, runs: int) -> dict[str, Any]:
    renew_once(bed, base, NODES)  # warm-up: imports, account registration
    minimal_once(bed, base)
    three, one, minimal = [], [], []
    for _ in range(runs):
        three.append(renew_once(bed, base, NODES))
        one.append(renew_once(bed, base, NODES[:1]))
        minimal.append(minimal_once(bed, base))
    m3, m1, mm = statistics.median(three), statistics.median(one), statistics.median(minimal)
    return {"runs": runs, "renew_3_nodes_s": round(m3, 3), "renew_1_node_s": round(m1, 3),
            "minimal_acme_script_s": round(mm, 3),
            "ratio_3_over_1": round(m3 / m1, 2), "target_3_over_1": 1.5,
            "ratio_1_over_minimal": round(m1 / mm, 2), "target_1_over_minimal": 1.2}


def measure_wan(bed: Any, base: Path, runs: int, rtt: float) -> dict[str, Any]:
    from urllib.parse import urlsplit

    from vaultops.testing.netem import LinkProxy

    url = urlsplit(bed.directory_url)
    with LinkProxy((url.hostname or "127.0.0.1", url.port or 443), latency=rtt) as link:
        directory = f"https://127.0.0.1:{link.port}{url.path}"  # Pebble builds its URLs from the Host header
        renew_once(bed, base, NODES, directory)
        three, one = [], []
        for _ in range(runs):
            three.append(renew_once(bed, base, NODES, directory))
            one.append(renew_once(bed, base, NODES[:1], directory))
    m3, m1 = statistics.median(three), statistics.median(one)
    return {"ca_rtt_ms": round(rtt * 1000), "renew_3_nodes_wan_s": round(m3, 3), "renew_1_node_wan_s": round(m1, 3),
            "ratio_3_over_1_wan": round(m3 / m1, 2)}


if __name__ == "__main__":
    sys.exit(main())
