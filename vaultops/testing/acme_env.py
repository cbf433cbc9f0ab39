"""A throw-away ACME test bed on 127.0.0.1: BIND 9 (TSIG updates) + Pebble validating against it.

Used by the TLS integration tests, the benchmark and the sandbox demo. Every
process is started on free ports with generated config in a given folder and
stopped by `stop()` (or the context manager).

    with AcmeTestBed(tmp, zone="vaultops.test", hosts=["node1", "node2", "lb"]) as bed:
        bed.directory_url, bed.pebble_ca_file, bed.dns_provider_settings(), bed.fetch_root()
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vaultops.errors import SandboxError

KEY_NAME = "acme-key"
OTHER_KEY_NAME = "other-key"   # a valid key that no update-policy grants: updates are REFUSED


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def have_tools() -> bool:
    return all(shutil.which(t) or Path(f"/usr/sbin/{t}").exists() for t in ("pebble", "named", "tsig-keygen"))


@dataclass
class Zone:
    name: str
    hosts: Sequence[str] = ()                       # relative names with A 127.0.0.1 and a grant
    cnames: dict[str, str] = field(default_factory=dict)   # _acme-challenge.<host> -> absolute target
    grants: Sequence[str] = ()                      # extra absolute names the key may update


class AcmeTestBed:
    def __init__(self, base: Path, *, zones: Sequence[Zone], eab: bool = False,
                 nonce_reject_percent: int | None = None, authz_reuse_percent: int | None = None) -> None:
        self.base = Path(base)
        self.zones = list(zones)
        self.eab = eab
        self.nonce_reject = nonce_reject_percent
        self.authz_reuse = authz_reuse_percent
        self.procs: list[subprocess.Popen[bytes]] = []
        self.dns_port = free_port()
        self.resolver_port = free_port()   # a recursive resolver for Pebble: it chases CNAMEs across zones
        self.acme_port = free_port()
        self.mgmt_port = free_port()

    # -- public -------------------------------------------------------------
    @property
    def directory_url(self) -> str:
        return f"https://127.0.0.1:{self.acme_port}/dir"

    @property
    def pebble_ca_file(self) -> str:
        return str(self.base / "pebble" / "listener-ca.pem")

    @property
    def roots_url(self) -> str:
        return f"https://127.0.0.1:{self.mgmt_port}/roots/0"

    @property
    def dns_server(self) -> str:
        return f"127.0.0.1:{self.dns_port}"

    def tsig_key_file(self, name: str = KEY_NAME) -> str:
        return str(self.base / "bind" / f"{name}.key")

    def dns_provider_settings(self, *, key: str = KEY_NAME) -> dict[str, Any]:
        return {"type": "rfc2136", "server": self.dns_server, "key_name": key,
                "key_file": self.tsig_key_file(key), "nameservers": [self.dns_server],
                "propagation_timeout": 20}

    def fetch_root(self) -> bytes:
        """Pebble's issuing root (regenerated at every Pebble start)."""
        ctx = ssl.create_default_context(cafile=self.pebble_ca_file)
        with urllib.request.urlopen(self.roots_url, context=ctx,
                                    timeout=5) as resp:
            return bytes(resp.read())

    def start(self) -> AcmeTestBed:
        try:
            self._start_bind()
            self._start_pebble()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        self.procs.clear()

    def __enter__(self) -> AcmeTestBed:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- BIND ---------------------------------------------------------------
    def _start_bind(self) -> None:
        d = self.base / "bind"
        d.mkdir(parents=True, exist_ok=True)
        for key in (KEY_NAME, OTHER_KEY_NAME):
            out = subprocess.run(["tsig-keygen", "-a", "hmac-sha256", key], capture_output=True, check=True)
            Path(self.tsig_key_file(key)).write_bytes(out.stdout)
            os.chmod(self.tsig_key_file(key), 0o600)
        conf = [f'options {{ directory "{d}"; pid-file "{d}/named.pid"; session-keyfile "{d}/session.key";',
                f"  listen-on port {self.dns_port} {{ 127.0.0.1; }}; listen-on-v6 {{ none; }};",
                "  recursion no; allow-query { any; }; dnssec-validation no; notify no; };",
                "controls { };",
                f'include "{self.tsig_key_file(KEY_NAME)}";', f'include "{self.tsig_key_file(OTHER_KEY_NAME)}";']
        for zone in self.zones:
            (d / f"{zone.name}.zone").write_text(_zone_file(zone))
            grants = [f"_acme-challenge.{h}.{zone.name}." for h in zone.hosts] + [f"{g}." for g in zone.grants]
            policy = " ".join(f"grant {KEY_NAME} name {g} TXT;" for g in grants)
            conf.append(f'zone "{zone.name}" {{ type primary; file "{d}/{zone.name}.zone"; '
                        f'journal "{d}/{zone.name}.jnl"; update-policy {{ {policy} }}; }};')
        (d / "named.conf").write_text("\n".join(conf) + "\n")
        log = open(d / "named.log", "wb")  # noqa: SIM115 - handed to the child
        self.procs.append(subprocess.Popen(["named", "-g", "-c", str(d / "named.conf")], stdout=log,
                                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        log.close()
        _wait_port(self.dns_port, self.procs[-1], d / "named.log", tcp=True)
        self._start_resolver()

    def _start_resolver(self) -> None:
        """Authoritative BIND does not follow a CNAME into another zone; a CA's resolver does."""
        d = self.base / "resolver"
        d.mkdir(parents=True, exist_ok=True)
        conf = [f'options {{ directory "{d}"; pid-file "{d}/named.pid"; session-keyfile "{d}/session.key";',
                f"  listen-on port {self.resolver_port} {{ 127.0.0.1; }}; listen-on-v6 {{ none; }};",
                "  recursion yes; allow-recursion { 127.0.0.1; }; dnssec-validation no; max-cache-ttl 0;",
                "  max-ncache-ttl 0; };", "controls { };"]
        conf += [f'zone "{z.name}" {{ type forward; forward only; '
                 f"forwarders {{ 127.0.0.1 port {self.dns_port}; }}; }};" for z in self.zones]
        (d / "named.conf").write_text("\n".join(conf) + "\n")
        log = open(d / "named.log", "wb")  # noqa: SIM115 - handed to the child
        self.procs.append(subprocess.Popen(["named", "-g", "-c", str(d / "named.conf")], stdout=log,
                                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        log.close()
        _wait_port(self.resolver_port, self.procs[-1], d / "named.log", tcp=True)

    # -- Pebble ---------------------------------------------------------------
    def _start_pebble(self) -> None:
        import json

        d = self.base / "pebble"
        d.mkdir(parents=True, exist_ok=True)
        _listener_cert(d)
        cfg: dict[str, Any] = {"listenAddress": f"127.0.0.1:{self.acme_port}",
                               "managementListenAddress": f"127.0.0.1:{self.mgmt_port}",
                               "certificate": str(d / "listener.pem"), "privateKey": str(d / "listener-key.pem"),
                               "httpPort": free_port(), "tlsPort": free_port(), "ocspResponderURL": "",
                               "externalAccountBindingRequired": self.eab}
        if self.eab:
            cfg["externalAccountMACKeys"] = {"kid-1": EAB_HMAC}
        (d / "pebble.json").write_text(json.dumps({"pebble": cfg}))
        env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1"}
        if self.nonce_reject is not None:
            env["PEBBLE_WFE_NONCEREJECT"] = str(self.nonce_reject)
        if self.authz_reuse is not None:
            env["PEBBLE_AUTHZREUSE"] = str(self.authz_reuse)
        log = open(d / "pebble.log", "wb")  # noqa: SIM115
        self.procs.append(subprocess.Popen(
            ["pebble", "-config", str(d / "pebble.json"), "-dnsserver", f"127.0.0.1:{self.resolver_port}"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env))
        log.close()
        _wait_port(self.acme_port, self.procs[-1], d / "pebble.log", tcp=True)
        _wait_port(self.mgmt_port, self.procs[-1], d / "pebble.log", tcp=True)


EAB_HMAC = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"


def _zone_file(zone: Zone) -> str:
    lines = ["$TTL 60", f"@ IN SOA ns1.{zone.name}. hostmaster.{zone.name}. 1 3600 600 86400 60",
             f"@ IN NS ns1.{zone.name}.", "ns1 IN A 127.0.0.1"]
    lines += [f"{h} IN A 127.0.0.1" for h in zone.hosts if h != "@"]
    lines += [f"_acme-challenge.{h} IN CNAME {t}." for h, t in zone.cnames.items()]
    return "\n".join(lines) + "\n"


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, *, tcp: bool, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SandboxError(f"{_prog(proc)} exited ({proc.returncode}): "
                               f"{log.read_text(errors='replace')[-800:]}", hint=f"see {log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SandboxError(f"{_prog(proc)} did not listen on {port} in {timeout:g}s", hint=f"see {log}")


def _prog(proc: subprocess.Popen[bytes]) -> str:
    args = proc.args
    return str(args[0]) if isinstance(args, (list, tuple)) else str(args)


def _listener_cert(d: Path) -> None:
    """A CA and a 127.0.0.1/localhost certificate for Pebble's own HTTPS listener."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vaultops test pebble listener CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    (d / "listener-ca.pem").write_bytes(ca.public_bytes(pem))
    (d / "listener.pem").write_bytes(cert.public_bytes(pem))
    key_path = d / "listener-key.pem"
    key_path.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    key_path.chmod(0o600)
