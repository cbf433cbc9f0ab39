"""Real servers for the TLS tests: BIND 9 (+ a resolver) and Pebble, moto, tiny SIGHUP TLS servers.

Session fixtures start everything on 127.0.0.1 free ports with generated
config in tmp folders and stop exactly what they started.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from vaultops.config import parse_config_file
from vaultops.services.tls.settings import TlsSettings, load_tls_settings
from vaultops.testing import tls_server
from vaultops.testing.acme_env import AcmeTestBed, Zone, free_port, have_tools

pytestmark = pytest.mark.integration

DOMAIN = "vaultops.test"
VALIDATION_ZONE = "acme-validation.test"
HOSTS = ["node1", "node2", "node3", "lb", "solo1", "solo2", "solo3", "bench1", "bench2", "bench3"]
SERVER = Path(tls_server.__file__)


@pytest.fixture(scope="session")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AcmeTestBed]:
    if not have_tools():
        pytest.skip("pebble/named not installed (apt-get install pebble bind9 bind9-dnsutils)")
    # node3's _acme-challenge is a CNAME into a delegated validation zone.
    zones = [Zone(DOMAIN, hosts=HOSTS, cnames={"node3": f"node3.{VALIDATION_ZONE}"}),
             Zone(VALIDATION_ZONE, grants=[f"node3.{VALIDATION_ZONE}"])]
    with AcmeTestBed(tmp_path_factory.mktemp("acme"), zones=zones) as started:
        yield started


@pytest.fixture(scope="session")
def pebble_root(bed: AcmeTestBed, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("root") / "pebble-root.pem"
    path.write_bytes(bed.fetch_root())
    return str(path)


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    port = free_port()
    exe = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        _wait_tcp(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


# -- tiny TLS "nodes" driven by the real local driver ---------------------------------------


@dataclass
class Nodes:
    """Tiny SIGHUP-reloading TLS servers laid out like sandbox nodes (dir/config.hcl, dir/bao.pid)."""

    folder: Path
    names: list[str]
    ports: dict[str, int]

    def cert(self, n: str) -> Path:
        return self.folder / n / "cert.pem"

    def key(self, n: str) -> Path:
        return self.folder / n / "key.pem"

    def drivers(self) -> dict[str, Any]:
        from vaultops.drivers import get_driver

        return {n: get_driver(n, {"type": "local", "dir": str(self.folder / n)}) for n in self.names}

    def write_config(self, bed: AcmeTestBed, *, verify_ca: str | None = None, lb: str | None = f"lb.{DOMAIN}",
                     provider: dict[str, Any] | None = None, **tls_extra: Any) -> Path:
        import yaml

        doc = {"cluster": {"name": "t", "load_balancer": lb} if lb else {"name": "t"},
               "nodes": [{"name": n, "address": f"https://127.0.0.1:{self.ports[n]}",
                          "tls_server_name": f"{n}.{DOMAIN}",
                          "driver": {"type": "local", "dir": str(self.folder / n)}} for n in self.names],
               "tls": {"nodes": {n: {"cert_file": str(self.cert(n)), "key_file": str(self.key(n))}
                                 for n in self.names},
                       "acme": {"directory": bed.directory_url, "ca_bundle": bed.pebble_ca_file,
                                "account_key_file": str(self.folder / "account.pem")},
                       "dns_provider": provider or bed.dns_provider_settings(),
                       "verify_ca": verify_ca, "reload_timeout": 3,
                       "lock_file": str(self.folder / "tls.lock"),
                       "metrics_file": str(self.folder / "metrics" / "vaultops_tls.prom"), **tls_extra}}
        path = self.folder / "vaultops.yaml"
        path.write_text(yaml.safe_dump(doc))
        return path

    def settings(self, bed: AcmeTestBed, **kwargs: Any) -> TlsSettings:
        return load_tls_settings(parse_config_file(self.write_config(bed, **kwargs)))


@pytest.fixture
def make_nodes(tmp_path: Path) -> Iterator[Callable[..., Nodes]]:
    procs: list[subprocess.Popen[bytes]] = []

    def make(names: list[str], *, ignore_hup: tuple[str, ...] = ()) -> Nodes:
        from vaultops.services.sandbox import certs

        ca_cert, ca_key = certs.make_ca(tmp_path)
        ports = {}
        for n in names:
            d = tmp_path / n
            d.mkdir()
            certs.issue(ca_cert, ca_key, [f"{n}.{DOMAIN}"], d / "cert.pem", d / "key.pem")
            ports[n] = free_port()
            # `-config=.../config.hcl` only lets the local driver recognise the process as this node's.
            args = [sys.executable, str(SERVER), str(ports[n]), str(d / "cert.pem"), str(d / "key.pem"),
                    f"-config={d / 'config.hcl'}"] + (["--ignore-hup"] if n in ignore_hup else [])
            proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            procs.append(proc)
            assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
            (d / "bao.pid").write_text(f"{proc.pid}\n")
        return Nodes(tmp_path, names, ports)

    yield make
    for proc in procs:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def _wait_tcp(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "server exited at start"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port}")
