"""Backup formats as plugins: one registry, no format name tested anywhere in services/backup,
one feed loop, one scratch-restore unseal."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from vaultops.vault.models import SealStatus

from vaultops.errors import BackupError, VaultError, VerificationError
from vaultops.services.backup import manifest, scratch, settings
from vaultops.services.backup.formats import FORMATS, get_format, make_source
from vaultops.services.backup.formats.base import Format
from vaultops.services.backup.stored import downloaded
from vaultops.services.backup.verify import ArchiveKind, ArchiveVerifier, verify_chunks
from vaultops.storage.local import LocalSink
from vaultops.testing.snapshots import make_archive

BACKUP = Path(settings.__file__).parent   # services/backup (a namespace package)


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_registered_format_loads_and_is_known_everywhere(name: str) -> None:
    fmt = get_format(name)
    assert isinstance(fmt, Format) and fmt.name == name
    assert fmt.extension in manifest.EXTENSIONS
    assert name in manifest.KINDS and name in settings.SOURCES


def test_the_registry_is_the_list_of_kinds_and_sources() -> None:
    assert set(manifest.KINDS) == set(FORMATS) == set(settings.SOURCES)


@pytest.mark.parametrize("name", ["file", "", "raft ", "../raft", "x" * 500])
def test_an_unknown_format_is_one_line(name: str) -> None:
    with pytest.raises(BackupError, match="unknown backup format") as err:
        get_format(name)
    assert "\n" not in str(err.value) and len(str(err.value)) < 200


def test_no_service_chooses_by_format_name() -> None:
    """Formats are chosen through the registry, never by an if-chain on their name."""
    chain = re.compile(r"""[!=]=\s*["'](raft|consul|postgresql)["']|["'](raft|consul|postgresql)["']\s*[!=]=""")
    found = [f"{p.relative_to(BACKUP)}:{n}" for p in BACKUP.rglob("*.py")
             for n, line in enumerate(p.read_text().splitlines(), 1) if chain.search(line)]
    assert found == []


def test_consul_source_is_built_from_settings_through_the_registry(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("acl-token\n")
    s = settings.BackupSettings(cluster="c", source="consul", sinks=(),
                                consul={"address": "http://127.0.0.1:8500", "token_file": str(token)})
    source = make_source("consul", clients=[], settings=s)
    assert source.kind == "consul" and source.extension == "snap"


class Recording(ArchiveVerifier):
    def __init__(self) -> None:
        super().__init__(ArchiveKind.RAFT)
        self.aborted = 0

    def abort(self) -> None:
        self.aborted += 1


def test_the_feed_loop_tees_every_chunk_and_finishes() -> None:
    data = make_archive()
    seen: list[bytes] = []
    report = verify_chunks((data[i:i + 100] for i in range(0, len(data), 100)), Recording(), tee=seen.append)
    assert b"".join(seen) == data and report.size == len(data)


@pytest.mark.parametrize("where", ["source", "tee", "finish"])
def test_the_feed_loop_aborts_the_verifier_on_any_error(where: str) -> None:
    data = make_archive()

    def chunks() -> Any:
        yield data[:50]
        if where == "source":
            raise BackupError("the source broke off")
        yield data[50:] if where != "finish" else data[50:-10]

    def tee(chunk: bytes | bytearray) -> None:
        if where == "tee":
            raise OSError(28, "No space left on device")

    verifier = Recording()
    with pytest.raises((BackupError, OSError)):
        verify_chunks(chunks(), verifier, tee=tee)
    assert verifier.aborted == 1


def test_a_download_that_cannot_be_written_is_one_line_and_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    sink = LocalSink(tmp_path / "sink")
    data = make_archive()
    sink.put_bytes("c-20250101T000000.000Z.snap", data)
    m = SimpleNamespace(name="c-20250101T000000.000Z.snap", size=len(data), sha256="0" * 64)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    verifier = Recording()
    real_open = __import__("os").open

    def full(path: Any, flags: int, mode: int = 0o777) -> int:
        if str(path).startswith(str(tmp_path / "tmp")):
            raise OSError(28, "No space left on device")
        return real_open(path, flags, mode)

    monkeypatch.setattr("vaultops.services.backup.stored.os.open", full)
    with pytest.raises(BackupError, match="cannot write the downloaded copy") as err, \
            downloaded(sink, m.name, m, verifier):  # type: ignore[arg-type]
        pass
    assert "\n" not in str(err.value) and verifier.aborted == 1
    assert list((tmp_path / "tmp").iterdir()) == []


# -- the scratch copy's unseal: judged at once, never a wait for shares that cannot suffice --------

class FakeSeal:
    def __init__(self, *, threshold: int = 3, good: set[str] | None = None, seals: bool = True) -> None:
        self.t, self.good, self.sealed, self.progress = threshold, good or {"a", "b", "c"}, seals, 0
        self.submitted: list[str] = []

    def status(self) -> Any:
        return SealStatus(type="shamir", initialized=True, sealed=self.sealed, t=self.t, n=5, progress=self.progress,
                          nonce="n1" if self.progress else "", version="2.7.2")

    def unseal(self, share: str, *, timeout: float | None = None) -> Any:
        self.submitted.append(share)
        self.progress += 1
        if self.progress == self.t:
            if any(s not in self.good for s in self.submitted[-self.t:]):
                self.progress = 0
                raise VaultError("node1: sys/unseal: failed to decrypt keys from storage", status=400)
            self.sealed, self.progress = False, 0
        return self.status()


def client(seal: FakeSeal) -> Any:
    return SimpleNamespace(name="node1", seal=seal)


def test_the_original_shares_unseal_the_restored_node() -> None:
    seal = FakeSeal()
    scratch._unseal(client(seal), ["a", "b", "c", "d"], error=BackupError)
    assert not seal.sealed and seal.submitted == ["a", "b", "c"]


def test_too_few_shares_fail_at_once_naming_the_threshold() -> None:
    with pytest.raises(BackupError, match=r"still sealed after 2 shares \(threshold 3\)") as err:
        scratch._unseal(client(FakeSeal()), ["a", "b"], error=BackupError)
    assert "ORIGINAL" in str(err.value)


def test_another_clusters_shares_are_refused_in_the_callers_terms() -> None:
    with pytest.raises(VerificationError, match="the restored node refused a share"):
        scratch._unseal(client(FakeSeal()), ["x", "y", "z"], error=VerificationError)


def test_a_node_that_never_seals_is_judged_by_its_status(monkeypatch) -> None:
    monkeypatch.setattr(scratch, "SEAL_WAIT", 0.3)
    seal = FakeSeal(seals=False)
    scratch._unseal(client(seal), ["a", "b", "c"], error=BackupError)
    assert seal.submitted == []


def test_a_pg_dump_drill_needs_postgresql_server_binaries_before_anything_is_fetched(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from vaultops.errors import SandboxError
    from vaultops.services.backup.formats import get_format
    from vaultops.services.sandbox import postgres

    assert get_format("postgresql").restores_into_sandbox and get_format("postgresql").sandbox_storage == "postgresql"
    get_format("raft").drill_prerequisites()                       # nothing beyond OpenBao itself
    monkeypatch.setattr(postgres.glob, "glob", lambda _pattern: [])
    with pytest.raises(SandboxError, match="PostgreSQL server binaries not found"):
        get_format("postgresql").drill_prerequisites()
    assert not get_format("consul").restores_into_sandbox


@pytest.mark.parametrize("kind", ["raft", "consul", "postgresql"])
def test_a_format_a_drill_restores_says_how_it_goes_into_the_copy(kind: str) -> None:
    """restores_into_sandbox and restore_copy go together (raft's once sat on RaftSource: every drill failed)."""
    from vaultops.services.backup.formats import get_format
    from vaultops.services.backup.formats.base import Format

    fmt = type(get_format(kind))
    assert fmt.restores_into_sandbox == (fmt.restore_copy is not Format.restore_copy), kind
