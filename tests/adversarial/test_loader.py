"""Hostile files, for every kind of file vaultops reads: one line, the documented exit code, file and key named.

Each kind is read the way a command reads it (`vaultops.cli.main` in-process), except the pending
rekey record, whose only reader needs a live cluster first: it is read through its service function.
"""

from __future__ import annotations

import hashlib
import json
import socket
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from vaultops.cli import main
from vaultops.errors import ConfigError, VaultOpsError
from vaultops.runbook.state import RunState, StepState
from vaultops.services.sandbox.cluster import NodeRecord, SandboxRecord, SandboxSpec
from vaultops.services.ceremony import rekey
from vaultops.services.backup.manifest import Manifest as BackupManifest
from vaultops.services.ceremony.manifest import Keyholder, Manifest, ScryptParams, make_verifier
from vaultops.testing.snapshots import make_archive, raft_meta, state_bin

REPO = Path(__file__).resolve().parents[2]
BIG = 21 * 1024 * 1024
BACKUP = "unit-20250101T000000.000Z.snap"
BILLION_LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Env:
    tmp: Path
    config: Path
    sink: Path
    state: Path
    capsys: pytest.CaptureFixture[str]

    def run(self, argv: list[str]) -> tuple[int, str]:
        self.capsys.readouterr()
        code = main(argv)
        return code, self.capsys.readouterr().err


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Env:
    state = tmp_path / "state"
    monkeypatch.setenv("VAULTOPS_STATE_DIR", str(state))
    sink = tmp_path / "sink"
    sink.mkdir()
    config = tmp_path / "vaultops.yaml"
    config.write_text(yaml.safe_dump(config_doc(tmp_path)))
    return Env(tmp_path, config, sink, state, capsys)


def config_doc(tmp: Path) -> dict[str, Any]:
    return {"cluster": {"name": "unit", "storage": "raft"},
            "nodes": [{"name": "n1", "address": f"http://127.0.0.1:{closed_port()}",
                       "driver": {"type": "local", "dir": str(tmp / "n1")}}],
            "journal": {"path": str(tmp / "journal.jsonl")},
            "backup": {"sinks": [{"type": "local", "path": str(tmp / "sink")}], "retention": {"keep_last": 3}},
            "upgrade": {"gate_timeout": 30}}


def manifest_doc() -> dict[str, Any]:
    verifier = make_verifier(bytes(range(1, 34)), params=ScryptParams(n=16), salt=b"s" * 16)
    return Manifest(cluster_id="c-1", threshold=1, shares=2, keyholders=(
        Keyholder("alice", 33, verifier, added=date(2025, 1, 2)),)).to_dict()


def pending_doc() -> dict[str, Any]:
    return rekey.Pending(nonce="n-1", api=rekey.RotationApi.REKEY, shares=3, threshold=2,
                         keyholders=(rekey.NewKeyholder("alice"),), old_threshold=1, old_shares=2,
                         started="2025-01-02T03:04:05+00:00").to_dict()


def state_doc() -> dict[str, Any]:
    return RunState(run_id="r1", runbook="upgrade", runbook_path="x", runbook_digest="d", cluster="unit",
                    variables={"to": "2.7.2"}, created_at="2025-01-02T03:04:05+00:00",
                    steps=[StepState(id="preflight", name="preflight", action="preflight", params={})]).to_json()


def backup_manifest_doc(archive: bytes) -> dict[str, Any]:
    return asdict(BackupManifest(name=BACKUP, kind="raft", cluster_name="unit", cluster_id="c-1",
                                 server_version="2.7.2", source_node="n1", size=len(archive),
                                 sha256=hashlib.sha256(archive).hexdigest(), started_at="2025-01-01T00:00:00+00:00",
                                 finished_at="2025-01-01T00:00:01+00:00"))


def record_doc() -> dict[str, Any]:
    return asdict(SandboxRecord(spec=SandboxSpec(name="box"), nodes=[NodeRecord("node1", 18200, 18201, "/nonexistent")],
                                version="2.7.2"))


SECRETS = {"warning": "sandbox", "root_token": "s.sandboxroot", "unseal_shares_b64": [], "keyholders": {}}


# -- the kinds: where a hostile file goes and which command reads it --------------------------------


@dataclass(frozen=True)
class Kind:
    name: str
    fmt: str                                   # yaml | json
    valid: Callable[[], dict[str, Any]]
    exit: int
    place: Callable[[Env, bytes], Path]        # write the content where the command reads it
    argv: Callable[[Env, Path], list[str]]


def _sandbox_place(env: Env, content: bytes) -> Path:
    """sandbox.json in a folder `sandbox up` would have made (with its marker), so status reads it."""
    from vaultops.services.sandbox.cluster import MARKER

    path = _at("state/sandboxes/box/sandbox.json")(env, content)
    (path.parent / MARKER).write_text("")
    path.parent.chmod(0o700)
    return path


def _at(relative: str) -> Callable[[Env, bytes], Path]:
    def place(env: Env, content: bytes) -> Path:
        path = env.tmp / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        return path
    return place


def _config_place(env: Env, content: bytes) -> Path:
    env.config.write_bytes(content)
    return env.config


def _backup_place(env: Env, content: bytes) -> Path:
    (env.sink / BACKUP).write_bytes(make_archive())
    path = env.sink / (BACKUP + ".manifest.json")
    path.write_bytes(content)
    return path


def _secrets_place(env: Env, content: bytes) -> Path:
    path = env.tmp / "SECRETS.json"
    path.write_bytes(content)
    doc = yaml.safe_load(env.config.read_text())
    doc["sandbox"] = {"name": "box", "secrets_file": str(path)}
    env.config.write_text(yaml.safe_dump(doc))
    return path


def _state_place(env: Env, content: bytes) -> Path:
    path = env.state / "runs" / "unit-upgrade.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


STATUS = lambda env, _p: ["status", "--config", str(env.config)]  # noqa: E731
INSPECT = lambda env, _p: ["backup", "inspect", BACKUP, "--config", str(env.config)]  # noqa: E731

KINDS = {k.name: k for k in [
    Kind("config", "yaml", lambda: config_doc(Path("/tmp")), 2, _config_place, STATUS),
    Kind("manifest", "yaml", manifest_doc, 2, _at("keyholders.yaml"),
         lambda env, p: ["keyholders", "list", "--manifest", str(p), "--config", str(env.config)]),
    Kind("runbook", "yaml", lambda: yaml.safe_load((REPO / "runbooks" / "upgrade.yaml").read_text()), 8,
         _at("upgrade.yaml"), lambda env, p: ["runbook", "status", str(p), "--config", str(env.config)]),
    Kind("state", "json", state_doc, 8, _state_place,
         lambda env, _p: ["runbook", "status", str(REPO / "runbooks" / "upgrade.yaml"), "--config", str(env.config)]),
    Kind("backup-manifest", "json", lambda: backup_manifest_doc(make_archive()), 6, _backup_place, INSPECT),
    Kind("sandbox-record", "json", record_doc, 10, _sandbox_place,
         lambda _env, _p: ["sandbox", "status"]),
    Kind("sandbox-secrets", "json", lambda: dict(SECRETS), 2, _secrets_place, STATUS),
]}


def dump(kind: Kind, doc: Any) -> str:
    return yaml.safe_dump(doc, sort_keys=False) if kind.fmt == "yaml" else json.dumps(doc, indent=1)


def first_key(kind: Kind) -> str:
    return next(iter(kind.valid()))


# Each hostile file: (name, content from the valid text, what the one-line error must also name)
def _dup(kind: Kind, text: str) -> str:
    key = first_key(kind)
    if kind.fmt == "json":
        return '{"%s": 1, %s' % (key, text.lstrip()[1:])
    return text + f"{key}: {yaml.safe_dump(kind.valid()[key], default_flow_style=True).strip()}\n"


def _padded(kind: Kind, text: str) -> str:
    return text + (" " if kind.fmt == "json" else "#") * (BIG - len(text))


COMMON: list[tuple[str, Callable[[Kind, str], str | bytes], str]] = [
    ("duplicate-key", _dup, "duplicate key"),
    ("list-not-mapping", lambda k, _t: "[1, 2]\n" if k.fmt == "json" else "- 1\n- 2\n", "(top): expected a mapping"),
    ("empty", lambda _k, _t: "", "empty"),
    ("non-utf8", lambda _k, t: t.encode() + b"\n\xff\xfe\n", "not UTF-8"),
    ("latin1-value", lambda k, t: t.replace(first_key(k), first_key(k) + "\xe9", 1).encode("latin-1"),
     "not UTF-8"),
    ("deep-nesting", lambda k, _t: "[" * 5_000 + "]" * 5_000 if k.fmt == "json"
     else "x: " + "[" * 500 + "]" * 500, "nested"),
]
YAML_ONLY: list[tuple[str, Callable[[Kind, str], str | bytes], str]] = [
    ("anchor-alias", lambda _k, t: t + "zz_a: &a [1]\nzz_b: *a\n", "anchor &a is not allowed"),
    ("billion-laughs", lambda _k, _t: BILLION_LAUGHS, "anchor &a is not allowed"),
    ("unhashable-key", lambda _k, t: "? [a, b]\n: 1\n" + t, "every key must be a string"),
    ("mapping-key", lambda _k, t: "? {a: 1}\n: 1\n" + t, "every key must be a string"),
    ("number-key", lambda _k, t: "1: x\n" + t, "every key must be a string"),
    ("python-tag", lambda _k, _t: "!!python/object/apply:os.system [echo pwned]\n", "is not allowed"),
    ("binary-tag", lambda k, t: t + "zz: !!binary aGVsbG8=\n", "is not allowed"),
    ("infinite", lambda k, t: t + "zz: .inf\n", "finite"),
    ("huge-int", lambda k, t: t + "zz: " + "9" * 5000 + "\n", "cannot read this value"),
]
JSON_ONLY: list[tuple[str, Callable[[Kind, str], str | bytes], str]] = [
    ("nan", lambda _k, _t: '{"x": NaN}', "NaN"),
    ("truncated", lambda _k, t: t[: len(t) // 2], "not valid JSON"),
]


def cases() -> list[Any]:
    out = []
    for kind in KINDS.values():
        for name, make, expect in COMMON + (YAML_ONLY if kind.fmt == "yaml" else JSON_ONLY):
            out.append(pytest.param(kind.name, make, expect, id=f"{kind.name}-{name}"))
    return out


def assert_one_line(code: int, err: str, kind: Kind, path: Path, *expected: str) -> str:
    lines = err.splitlines()
    assert code == kind.exit, err
    assert len(lines) == 1 and lines[0].startswith("vaultops: error: "), err
    assert "Traceback" not in err
    assert str(path) in lines[0], lines[0]
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(("kind_name", "make", "expect"), cases())
def test_hostile_file_is_one_line_naming_file_and_problem(env: Env, kind_name: str,
                                                           make: Callable[[Kind, str], str | bytes],
                                                           expect: str) -> None:
    kind = KINDS[kind_name]
    content = make(kind, dump(kind, kind.valid()))
    path = kind.place(env, content if isinstance(content, bytes) else content.encode())
    assert_one_line(*env.run(kind.argv(env, path)), kind, path, expect)


# -- wrong types at several depths, unknown keys, impossible dates: the key path is named --------------

SET = object()


def _set(doc: Any, path: list[Any], value: Any) -> None:
    for step in path[:-1]:
        doc = doc[step]
    if value is SET:
        del doc[path[-1]]
    else:
        doc[path[-1]] = value


TYPED: list[tuple[str, list[Any], Any, str]] = [
    ("config", ["journal", "path"], 5, "journal.path: expected a string, got an integer"),
    ("config", ["nodes"], 5, "nodes: expected a list"),
    ("config", ["nodes", 0, "driver"], "ssh", "nodes[0].driver: expected a mapping"),
    ("config", ["backup", "sinks", 0, "path"], ["x"], "backup.sinks[0].path: expected a string"),
    ("config", ["backup", "retention", "keep_last"], -1, "backup.retention.keep_last: expected an integer >= 0"),
    ("config", ["upgrade", "gate_timeout"], "2023-02-30", "upgrade.gate_timeout: expected a number"),
    ("config", ["cluster", "colour"], "red", "cluster: unknown key 'colour'"),
    ("config", ["backup", "sinks", 0, "bucket"], "b", "backup.sinks[0]: unknown key 'bucket'"),
    ("config", ["nodes", 0, "name"], "-oProxyCommand=touch x", "nodes[0].name: node name"),
    ("config", ["tls"], {"nodes": {"n1": {"cert_file": 3, "key_file": "k"}}}, "tls.nodes.n1.cert_file"),
    ("manifest", ["keyholders", 0, "added"], "2023-02-30", "keyholders[0].added: expected an ISO date"),
    ("manifest", ["keyholders", 0, "verifier", "n"], "many", "keyholders[0].verifier.n: expected an integer"),
    ("manifest", ["keyholders", 0, "share_index"], True, "keyholders[0].share_index: expected an integer"),
    ("manifest", ["keyholders", 0, "colour"], "red", "keyholders[0]: unknown key 'colour'"),
    ("manifest", ["threshold"], SET, "(top): missing key 'threshold'"),
    ("manifest", ["keyholders", 0, "name"], "alice\x1b]0;pwned\x07", "keyholders[0].name: holds a control"),
    ("manifest", ["keyholders", 0, "name"], "alice\u202e", "keyholders[0].name: holds a control"),
    ("runbook", ["steps", 2, "steps", 0, "action"], "rm_rf", "steps[2].steps[0]"),
    ("runbook", ["params"], ["to"], "params must be a mapping"),
    ("runbook", ["colour"], "red", "unknown key 'colour'"),
    ("state", ["steps", 0, "status"], 5, "steps[0].status"),
    ("state", ["steps"], "x", "steps: expected a list"),
    ("state", ["steps", 0, "colour"], "red", "steps[0]: unknown key 'colour'"),
    ("state", ["created_at"], "2023-02-30T00:00:00+00:00", "created_at: expected an ISO timestamp"),
    ("state", ["variables"], [], "variables: expected a mapping"),
    ("backup-manifest", ["started_at"], "2023-02-30T00:00:00+00:00", "started_at: expected an ISO timestamp"),
    ("backup-manifest", ["size"], "10", "size: expected an integer"),
    ("backup-manifest", ["members"], {"meta.json": "x"}, "members.meta.json: expected an integer"),
    ("backup-manifest", ["colour"], "red", "unknown key 'colour'"),
    ("backup-manifest", ["sha256"], "0" * 63, "sha256"),
    ("sandbox-record", ["nodes", 0, "api_port"], "x", "nodes[0].api_port: expected an integer"),
    ("sandbox-record", ["spec", "colour"], "red", "spec: unknown key 'colour'"),
    ("sandbox-secrets", ["root_token"], 5, "root_token: expected a string"),
    ("sandbox-secrets", ["colour"], "red", "unknown key 'colour'"),
]


@pytest.mark.parametrize(("kind_name", "path", "value", "expect"), TYPED,
                         ids=[f"{t[0]}-{'.'.join(map(str, t[1]))}" for t in TYPED])
def test_wrong_type_unknown_key_or_date_names_the_key(env: Env, kind_name: str, path: list[Any], value: Any,
                                                      expect: str) -> None:
    kind = KINDS[kind_name]
    doc = config_doc(env.tmp) if kind.name == "config" else kind.valid()
    _set(doc, path, value)
    target = kind.place(env, dump(kind, doc).encode())
    assert_one_line(*env.run(kind.argv(env, target)), kind, target, expect)


def test_the_valid_files_pass(env: Env) -> None:
    """The hostile cases above fail for their hostility, not because the valid base is refused."""
    for kind in KINDS.values():
        if kind.name in ("config", "sandbox-secrets"):
            continue  # status needs a server; read below without one
        path = kind.place(env, dump(kind, kind.valid()).encode())
        code, err = env.run(kind.argv(env, path))
        assert "vaultops: error:" not in err or str(path) not in err, (kind.name, err)
    from vaultops.config import parse_config_file
    from vaultops.vault.auth import resolve_token

    cfg = parse_config_file(env.config)
    assert cfg.section("upgrade") == {"gate_timeout": 30}
    _secrets_place(env, json.dumps(SECRETS).encode())
    assert resolve_token(parse_config_file(env.config)) == "s.sandboxroot"


def test_keyholder_names_init_accepts_stay_readable(tmp_path: Path) -> None:
    doc = manifest_doc()
    doc["keyholders"][0]["name"] = "Zoë.ops-1"
    path = tmp_path / "keyholders.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    assert Manifest.load(path).keyholders[0].name == "Zoë.ops-1"


def test_a_date_where_text_is_meant_is_text(env: Env) -> None:
    """PyYAML made 2023-02-30 a date and crashed; vaultops reads dates only where a model types them."""
    from vaultops.config import parse_config_file

    doc = config_doc(env.tmp)
    doc["cluster"]["name"] = "2023-02-30"
    doc["nodes"][0]["driver"]["note"] = "2023-02-30"
    env.config.write_text(yaml.safe_dump(doc).replace("'2023-02-30'", "2023-02-30"))
    cfg = parse_config_file(env.config)
    assert cfg.cluster_name == "2023-02-30" and cfg.nodes[0].driver["note"] == "2023-02-30"


# -- size cap: refused before reading -----------------------------------------------------------------


@pytest.mark.parametrize("kind_name", list(KINDS))
def test_a_21_mb_file_fails_fast_on_the_size_cap(env: Env, kind_name: str) -> None:
    kind = KINDS[kind_name]
    path = kind.place(env, _padded(kind, dump(kind, kind.valid())).encode())
    start = time.monotonic()
    code, err = env.run(kind.argv(env, path))
    assert time.monotonic() - start < 1.0
    assert_one_line(code, err, kind, path, "limit")


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_the_size_cap_is_checked_before_reading(tmp_path: Path, fmt: str) -> None:
    from vaultops.files import loader

    reader = loader.read_yaml if fmt == "yaml" else loader.read_json
    path = tmp_path / "big"
    with path.open("wb") as fh:
        fh.write(b"{" + b" " * (BIG - 2) + b"}")
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError, match="over the 1.0 MiB limit"):
            reader(path, cap=loader.CONFIG_CAP)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024  # 21 MB were never read into memory


def test_a_fifo_or_device_is_not_read_forever(tmp_path: Path) -> None:
    from vaultops.files.loader import read_yaml

    with pytest.raises(ConfigError, match="not a regular file"):
        read_yaml("/dev/zero")
    with pytest.raises(ConfigError, match="not a regular file"):
        read_yaml(tmp_path)


# -- the pending rekey record: read through its service (its command needs a live cluster first) ---------


PENDING_CASES = [
    ("damaged-yaml", "version: 1\nnonce: [\n", "not valid YAML"),
    ("list", "- 1\n", "(top): expected a mapping"),
    ("duplicate", "version: 1\nversion: 1\n", "duplicate key 'version'"),
    ("alias", "version: &v 1\nnonce: *v\n", "anchor &v is not allowed"),
    ("billion-laughs", BILLION_LAUGHS, "anchor &a is not allowed"),
    ("unhashable", "? [1]\n: 2\n", "every key must be a string"),
    ("empty", "", "empty"),
]


@pytest.mark.parametrize(("text", "expect"), [c[1:] for c in PENDING_CASES], ids=[c[0] for c in PENDING_CASES])
def test_a_damaged_pending_rekey_record_is_one_config_error(tmp_path: Path, text: str, expect: str) -> None:
    manifest = tmp_path / "keyholders.yaml"
    rekey.pending_path(manifest).write_text(text)
    _assert_pending_error(manifest, expect)


@pytest.mark.parametrize(("path", "value", "expect"), [
    (["started"], "2023-02-30T00:00:00+00:00", "started: expected an ISO timestamp"),
    (["phase"], "bogus", "phase: 'bogus' is not one of: submitting, verifying"),
    (["old", "shares"], "two", "old.shares: expected an integer"),
    (["keyholders", 0, "name"], "a\x1b[2Jb", "keyholders[0].name: holds a control or invisible character"),
    (["draft"], manifest_doc() | {"threshold": "x"}, "draft.threshold: expected an integer"),
    (["colour"], "red", "unknown key 'colour'"),
])
def test_pending_record_fields_are_typed(tmp_path: Path, path: list[Any], value: Any, expect: str) -> None:
    manifest = tmp_path / "keyholders.yaml"
    doc = pending_doc()
    _set(doc, path, value)
    rekey.pending_path(manifest).write_text(yaml.safe_dump(doc))
    _assert_pending_error(manifest, expect)


def _assert_pending_error(manifest: Path, expect: str) -> None:
    with pytest.raises(ConfigError) as info:
        rekey.load_pending(manifest)
    message = str(info.value)
    assert "\n" not in message and str(rekey.pending_path(manifest)) in message and expect in message, message
    assert info.value.exit_code == 2


def test_a_valid_pending_record_round_trips(tmp_path: Path) -> None:
    manifest = tmp_path / "keyholders.yaml"
    rekey.pending_path(manifest).write_text(yaml.safe_dump(pending_doc()))
    back = rekey.load_pending(manifest)
    assert back is not None and back.started == "2025-01-02T03:04:05+00:00"


# -- meta.json inside a verified archive -----------------------------------------------------------------


@pytest.mark.parametrize("configuration", [
    "x", [], 5, {"Servers": "x"}, {"Servers": [5]}, {"Servers": [{"ID": 5}]}, {"Servers": [{"Suffrage": "x"}]},
], ids=repr)
def test_meta_json_of_an_unexpected_shape_is_one_line(env: Env, configuration: Any) -> None:
    state = state_bin([("core/x", b"v")])
    meta = raft_meta(size=len(state)) | {"Configuration": configuration}
    archive = make_archive(meta=meta)
    (env.sink / BACKUP).write_bytes(archive)
    (env.sink / (BACKUP + ".manifest.json")).write_text(json.dumps(backup_manifest_doc(archive)))
    code, err = env.run(INSPECT(env, env.sink))
    line = assert_one_line(code, err, KINDS["backup-manifest"], env.sink, "meta.json: Configuration")
    assert BACKUP in line


def test_meta_json_without_a_configuration_still_inspects(env: Env) -> None:
    state = state_bin([("core/x", b"v")])
    archive = make_archive(meta={"Index": 7, "Term": 2, "Size": len(state), "Unknown": {"x": 1}})
    (env.sink / BACKUP).write_bytes(archive)
    (env.sink / (BACKUP + ".manifest.json")).write_text(json.dumps(backup_manifest_doc(archive)))
    code, err = env.run(INSPECT(env, env.sink))
    assert code == 0, err


# -- the token, from every source ---------------------------------------------------------------------

BAD_TOKENS = [("newline", "s.abc\ndef", "a line break"), ("carriage-return", "s.abc\rdef", "a line break"),
              ("tab", "s.abc\tdef", "a control character"), ("space", "s.abc def", "a space"),
              ("escape", "s.abc\x1b[2Jdef", "a control character"), ("cyrillic", "s.тoкен", "non-ASCII"),
              ("emoji", "s.abc\U0001f600", "non-ASCII"), ("latin1", "s.ab\xe9", "non-ASCII")]


@pytest.mark.parametrize("source", ["VAULT_TOKEN", "BAO_TOKEN", "token_file", "home", "sandbox"])
@pytest.mark.parametrize(("token", "problem"), [t[1:] for t in BAD_TOKENS], ids=[t[0] for t in BAD_TOKENS])
def test_a_token_that_cannot_be_a_header_is_one_line_never_shown(env: Env, monkeypatch: pytest.MonkeyPatch,
                                                                  source: str, token: str, problem: str) -> None:
    where = _plant_token(env, monkeypatch, source, token)
    code, err = env.run(STATUS(env, None))
    lines = err.splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("vaultops: error: "), err
    assert where in lines[0] and problem in lines[0], lines[0]
    assert "def" not in lines[0].split("holds")[1] and "s.ab" not in lines[0], lines[0]


def _plant_token(env: Env, monkeypatch: pytest.MonkeyPatch, source: str, token: str) -> str:
    if source in ("VAULT_TOKEN", "BAO_TOKEN"):
        monkeypatch.setenv(source, token)
        return f"${source}"
    if source == "sandbox":
        return str(_secrets_place(env, json.dumps(SECRETS | {"root_token": token}).encode()))
    if source == "token_file":
        path = env.tmp / "token"
        path.write_text(token + "\n", encoding="utf-8")
        doc = yaml.safe_load(env.config.read_text())
        doc["cluster"]["token_file"] = str(path)
        env.config.write_text(yaml.safe_dump(doc))
    else:
        monkeypatch.setattr(Path, "home", classmethod(lambda cls: env.tmp))
        path = env.tmp / ".vault-token"
        path.write_text(token + "\n", encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(("content", "problem"), [
    (b"s.abc\xff\n", "not UTF-8"), (b"s." + b"a" * (128 * 1024), "limit")])
def test_a_token_file_that_is_not_a_token_file(env: Env, content: bytes, problem: str) -> None:
    path = env.tmp / "token"
    path.write_bytes(content)
    doc = yaml.safe_load(env.config.read_text())
    doc["cluster"]["token_file"] = str(path)
    env.config.write_text(yaml.safe_dump(doc))
    code, err = env.run(STATUS(env, None))
    assert code == 2 and len(err.splitlines()) == 1 and str(path) in err and problem in err, err


def test_errors_are_vaultops_errors_with_printable_messages() -> None:
    """A key made of control characters is shown escaped, so a hostile file cannot drive the terminal."""
    from vaultops.files.loader import validate
    from vaultops.schema import ConfigFile

    with pytest.raises(VaultOpsError) as info:
        validate({"nodes": [{"name": "a", "address": "https://a", "\x1b[2Jx\n": 1}]}, ConfigFile, source="f")
    assert "\x1b" not in str(info.value) and "\n" not in str(info.value)
    assert "nodes[0]: unknown key" in str(info.value)
