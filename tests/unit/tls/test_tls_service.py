"""Certificates as values, renewal windows, settings, reload order, metrics, lock, install rollback."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path
from typing import Any

import pytest

from vaultops.config import parse_config
from vaultops.drivers.base import Result
from vaultops.errors import ConfigError, DriverError
from vaultops.files.atomic import atomic_write_bytes
from vaultops.services.tls.acme_client import Issued, make_private_key
from vaultops.services.tls.cron import LockHeld, metrics_text, renewal_lock
from vaultops.services.tls.inspect import TLSError, cert_info, key_matches_cert, wait_served
from vaultops.services.tls.install import PREVIOUS, Pair, install
from vaultops.services.tls.renew import NodeOutcome, Outcome, RenewReport, reload_order
from vaultops.services.tls.settings import KeyType, load_tls_settings
from vaultops.services.tls.status import NodeCertStatus

UTC = dt.timezone.utc


def self_signed(key_pem: bytes, names: list[str], *, days: float = 90, age: float = 0) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    key = serialization.load_pem_private_key(key_pem, password=None)
    start = dt.datetime.now(UTC) - dt.timedelta(days=age)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .sign(key, hashes.SHA256()))  # type: ignore[arg-type]
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def key() -> bytes:
    return make_private_key(KeyType.EC256)


def test_renewal_window_is_the_last_third(key: bytes) -> None:
    fresh = cert_info(self_signed(key, ["a.test"], days=90, age=10))
    old = cert_info(self_signed(key, ["a.test"], days=90, age=61))
    assert not fresh.renewal_due(1 / 3) and old.renewal_due(1 / 3)
    assert 28 < old.days_left() < 30


def test_rsa_keys_and_pair_matching(key: bytes) -> None:
    rsa = make_private_key(KeyType.RSA2048)
    assert b"PRIVATE KEY" in rsa
    chain = self_signed(key, ["a.test"])
    assert key_matches_cert(key, chain) and not key_matches_cert(rsa, chain)
    assert not key_matches_cert(b"junk", chain)
    assert "PRIVATE" not in repr(Issued(("a",), key, chain)) and "PRIVATE" not in repr(Pair(key, chain))


def test_renewal_reason(key: bytes) -> None:
    good = cert_info(self_signed(key, ["a.test", "lb.test"]))
    lacking = cert_info(self_signed(key, ["a.test"]))
    st = NodeCertStatus("a", "a.test", ("a.test", "lb.test"), served=good, disk=good)
    assert st.renewal_reason(1 / 3) is None and not st.differ
    st = NodeCertStatus("a", "a.test", ("a.test", "lb.test"), served=good, disk=lacking)
    assert st.renewal_reason(1 / 3) == "on-disk certificate lacks lb.test" and st.differ
    st = NodeCertStatus("a", "a.test", ("a.test",), served=None, served_error="refused", disk=good)
    assert "no served certificate (refused)" == st.renewal_reason(1 / 3)


def test_reload_order_active_last() -> None:
    assert reload_order(["n1", "n2", "n3", "n4"], {"n1": "active", "n3": "standby"}) == ["n3", "n2", "n4", "n1"]
    assert reload_order(["n1", "n2"], {}) == ["n1", "n2"]


def config(tmp_path: Path, tls: dict[str, Any], **cluster: Any) -> Any:
    doc = {"cluster": {"name": "c", **cluster},
           "nodes": [{"name": "v1", "address": "https://10.0.0.1:8200", "tls_server_name": "v1.example.com"},
                     {"name": "v2", "address": "https://v2.example.com:8300"}],
           "tls": tls}
    return parse_config(doc, path=tmp_path / "vaultops.yaml")


def tls_section(**extra: Any) -> dict[str, Any]:
    return {"nodes": {n: {"cert_file": f"/e/{n}.crt", "key_file": f"/e/{n}.key"} for n in ("v1", "v2")},
            "acme": {"directory": "staging"}, "dns_provider": {"type": "rfc2136"}, **extra}


def test_settings_names_directory_and_defaults(tmp_path: Path) -> None:
    s = load_tls_settings(config(tmp_path, tls_section(resolvers=["10.0.0.2"]), load_balancer="vault.example.com"))
    v1, v2 = s.nodes
    assert (v1.host, v1.port, v1.server_name, v1.names) == ("10.0.0.1", 8200, "v1.example.com",
                                                            ("v1.example.com", "vault.example.com"))
    assert (v2.server_name, v2.port) == ("v2.example.com", 8300)
    assert "acme-staging" in s.acme.directory and s.acme.key_type is KeyType.EC256
    assert s.acme.renew_fraction == pytest.approx(1 / 3)
    assert s.dns_provider["resolvers"] == ["10.0.0.2"]


@pytest.mark.parametrize("tls, match", [
    ({"acme": {"directory": "http://plain"}}, "directory"),
    ({"acme": {"directory": "staging", "key_type": "dsa"}}, "key_type"),
    ({"acme": {"directory": "staging", "renew_fraction": 2}}, "renew_fraction"),
    ({"acme": {"directory": "staging", "eab": {"kid": "k"}}}, "eab"),
    ({"nodes": {"v1": {"cert_file": "/x"}}}, "key_file"),
])
def test_settings_errors_say_what_to_fix(tmp_path: Path, tls: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_tls_settings(config(tmp_path, {**tls_section(), **tls}))


class MemDriver:
    """Files in memory; writes can be told to fail."""

    node = "v1"

    def __init__(self, files: dict[str, bytes], fail_on: str | None = None) -> None:
        self.files = files
        self.modes: dict[str, int] = {}
        self.owners: dict[str, tuple[str | None, str | None]] = {}
        self.fail_on = fail_on

    def write_file(self, path: str, data: bytes, *, mode: int = 0o600, owner: str | None = None,
                   group: str | None = None) -> Result:
        if path == self.fail_on:
            raise DriverError(f"cannot write {path}", hint="disk full")
        self.files[path], self.modes[path] = data, mode
        self.owners[path] = (owner, group)
        return Result.of(f"write {path}", 0)

    def read_file(self, path: str) -> bytes:
        if path not in self.files:
            raise DriverError(f"no {path}", hint="x")
        return self.files[path]


def test_install_keeps_previous_and_rolls_back_a_failed_write(tmp_path: Path, key: bytes) -> None:
    s = load_tls_settings(config(tmp_path, tls_section()))
    node = s.node("v1")
    old = Pair(key, self_signed(key, ["v1.example.com"]))
    new_key = make_private_key(KeyType.EC256)
    new = Pair(new_key, self_signed(new_key, ["v1.example.com"]))
    drv = MemDriver({node.key_file: old.key_pem, node.cert_file: old.chain_pem})
    assert install(drv, node, new) == old  # type: ignore[arg-type]
    assert drv.files[node.key_file + PREVIOUS] == old.key_pem and drv.modes[node.key_file] == 0o600
    assert drv.modes[node.cert_file] == 0o644
    assert set(drv.owners.values()) == {(None, None)}          # no tls.owner: ownership left alone

    failing = MemDriver({node.key_file: old.key_pem, node.cert_file: old.chain_pem}, fail_on=node.cert_file)
    with pytest.raises(TLSError, match="previous pair is back in place and matches"):
        install(failing, node, new)  # type: ignore[arg-type]
    assert failing.files[node.key_file] == old.key_pem  # key put back: the pair still matches

    with pytest.raises(TLSError, match="does not match"):
        install(drv, node, Pair(key, new.chain_pem))  # type: ignore[arg-type]


def test_settings_owner_and_group_cluster_wide_and_per_node(tmp_path: Path) -> None:
    section = tls_section(owner="openbao", group=995)
    section["nodes"]["v2"].update(owner="vault", group="vault")
    v1, v2 = load_tls_settings(config(tmp_path, section)).nodes
    assert (v1.owner, v1.group, v2.owner, v2.group) == ("openbao", "995", "vault", "vault")
    plain = load_tls_settings(config(tmp_path, tls_section())).node("v1")
    assert (plain.owner, plain.group) == (None, None)
    with pytest.raises(ConfigError, match="owner"):
        load_tls_settings(config(tmp_path, tls_section(owner=["a"])))


def test_install_gives_key_chain_and_previous_pair_to_the_configured_owner(tmp_path: Path, key: bytes) -> None:
    """Real files through the local driver: as root to nobody:nogroup (CI), else to the current user."""
    import grp
    import os
    import pwd

    from vaultops.drivers import get_driver

    root = os.geteuid() == 0
    owner = "nobody" if root else pwd.getpwuid(os.geteuid()).pw_name
    group = "nogroup" if root else grp.getgrgid(os.getegid()).gr_name
    tls = tls_section(owner=owner, group=group)
    tls["nodes"]["v1"] = {"cert_file": str(tmp_path / "tls" / "cert.pem"),
                          "key_file": str(tmp_path / "tls" / "key.pem")}
    node = load_tls_settings(config(tmp_path, tls)).node("v1")
    drv = get_driver("v1", {"type": "local", "dir": str(tmp_path)})
    old = Pair(key, self_signed(key, ["v1.example.com"]))
    new_key = make_private_key(KeyType.EC256)
    new = Pair(new_key, self_signed(new_key, ["v1.example.com"]))
    atomic_write_bytes(node.key_file, old.key_pem, mode=0o600)      # the writer's own files before
    atomic_write_bytes(node.cert_file, old.chain_pem, mode=0o644)
    assert install(drv, node, new) == old
    ids = (pwd.getpwnam(owner).pw_uid, grp.getgrnam(group).gr_gid)
    for path, mode, data in [(node.key_file, 0o600, new.key_pem), (node.cert_file, 0o644, new.chain_pem),
                             (node.key_file + PREVIOUS, 0o600, old.key_pem),
                             (node.cert_file + PREVIOUS, 0o644, old.chain_pem)]:
        st = Path(path).stat()
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (*ids, mode), path
        assert Path(path).read_bytes() == data
    if root:
        assert ids == (65534, 65534)
    assert sorted(p.name for p in (tmp_path / "tls").iterdir()) == ["cert.pem", "cert.pem.previous", "key.pem",
                                                                     "key.pem.previous"]


def test_wait_served_polls_until_the_fingerprint(key: bytes) -> None:
    a, b = cert_info(self_signed(key, ["a"])), cert_info(self_signed(key, ["b"]))
    seen = iter([a, a, b])
    sleeps: list[float] = []
    assert wait_served(lambda: next(seen), b.fingerprint, timeout=5, sleep=sleeps.append) == b
    assert len(sleeps) == 2


def test_metrics_have_days_per_node_and_run_state(key: bytes) -> None:
    c = cert_info(self_signed(key, ["a"], days=30))
    st = NodeCertStatus("v1", "a", ("a",), served=c, disk=c)
    ok = RenewReport((NodeOutcome("v1", Outcome.UNCHANGED),), (st,))
    text = metrics_text(ok)
    line = next(x for x in text.splitlines() if x.startswith('vaultops_tls_cert_days_left{node="v1",source="served"}'))
    assert 29.9 < float(line.split()[-1]) <= 30
    assert "vaultops_tls_renew_last_run_success 1" in text
    failed = RenewReport((NodeOutcome("v1", Outcome.ROLLED_BACK, error="x"),), (st,))
    assert "vaultops_tls_renew_failed_nodes 1" in metrics_text(failed)


def test_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    path = str(tmp_path / "tls.lock")
    with renewal_lock(path):
        with pytest.raises(LockHeld, match="another"):
            with renewal_lock(path):
                pass
    with renewal_lock(path):
        pass
    assert stat.S_IMODE(Path(path).stat().st_mode) == 0o600


def test_account_key_created_0600_and_reused(tmp_path: Path) -> None:
    from vaultops.services.tls.acme_client import _load_account_key

    path = tmp_path / "acct" / "account.pem"
    first = _load_account_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert _load_account_key(path).thumbprint() == first.thumbprint()
    atomic_write_bytes(path, path.read_bytes(), mode=0o644)
    _load_account_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_renewal_events_are_cron_log_lines_of_the_one_shape(capsys: pytest.CaptureFixture[str]) -> None:
    """time/level/event like every other cron line (backup, errors); a failure is a warning, not the error line."""
    import json

    from vaultops.cli.tls_cmd import _cron_line

    _cron_line({"event": "renewed", "node": "v1", "reason": "expiring"})
    _cron_line({"event": "install_failed", "node": "v2", "error": "disk full"})
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(e["level"], e["event"], e["node"]) for e in lines] == [("info", "renewed", "v1"),
                                                                    ("warning", "install_failed", "v2")]
    assert all("time" in e and "ts" not in e for e in lines)
