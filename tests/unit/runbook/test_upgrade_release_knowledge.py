"""Issue #18: the release table, the seal-move config check, the point of no return, the probe's error."""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import SimpleNamespace

import pytest

from vaultops.cli.runbook_cmd import PNR_MARK, render_plan
from vaultops.drivers.local import LocalDriver
from vaultops.errors import ProbeFailed, RunbookError, VaultOpsError
from vaultops.runbook.loader import load_runbook, resolve
from vaultops.services.upgrade import pnr
from vaultops.services.upgrade.config_checks import parse_server_config, run_config_checks
from vaultops.services.upgrade.probes import _Trial, direction
from vaultops.services.upgrade.releases_known import REMOVED_SEALS, TRANSITIONS, checks_for
from vaultops.services.upgrade.service import runbooks_dir
from vaultops.services.upgrade.steps import UPGRADE_ACTIONS
from vaultops.vault.sys_rotate import ROTATION_APIS

AWS = 'seal "awskms" {\n  region = "eu-west-1"  # a comment with seal "pkcs11" {\n  kms_key_id = "alias/k"\n}\n'


@pytest.mark.parametrize(("current", "target", "ids"), [
    ("2.6.2", "2.7.2", ["seal-plugins-2.7"]),
    ("2.4.1", "2.7.2", ["rekey-endpoints", "forwarding-2.6", "recovery-backup-2.6", "seal-plugins-2.7"]),
    ("2.5.3", "2.6.2", ["forwarding-2.6", "recovery-backup-2.6"]),
    ("2.7.0", "2.7.2", []),
])
def test_the_checks_of_a_known_pair(current: str, target: str, ids: list[str]) -> None:
    report = checks_for(current, target)
    assert report.known and [t.id for t in report.checks] == ids


@pytest.mark.parametrize(("current", "target", "named"), [("2.7.2", "2.8.0", "2.8.0"),
                                                           ("1.15.2", "1.16.0", "1.15.2 and 1.16.0")])
def test_an_unknown_pair_says_so(current: str, target: str, named: str) -> None:
    report = checks_for(current, target)
    assert not report.known and named in report.note and "outside the releases this table knows" in report.note
    assert "outside" in report.render()[0]


def test_the_rekey_entry_reuses_the_one_statement_of_the_rotation_apis() -> None:
    assert next(t for t in TRANSITIONS if t.id == "rekey-endpoints").detail is ROTATION_APIS


def test_the_scanner_reads_seals_kms_plugins_and_the_top_level_plugin_directory() -> None:
    cfg = parse_server_config('# seal "ocikms" {}\nplugin_directory = "/usr/lib/openbao/plugins"\n'
                              'plugin "kms" "awskms" {\n  command = "openbao-plugin-kms-aws"\n  sha256sum = "ab"\n}\n'
                              'storage "raft" {\n  path = "/d"\n  retry_join { leader_api_addr = "x" }\n}\n' + AWS)
    assert cfg.seals == ("awskms",)
    assert cfg.kms_plugins == {"awskms": {"command": "openbao-plugin-kms-aws", "sha256sum": "ab"}}
    assert cfg.plugin_directory == "/usr/lib/openbao/plugins"
    assert parse_server_config('storage "raft" {\n  plugin_directory = "/x"\n}\n').plugin_directory is None


def _node(tmp_path: Path, name: str, hcl: str) -> LocalDriver:
    (tmp_path / name).mkdir()
    (tmp_path / name / "config.hcl").write_text(hcl)
    return LocalDriver(name, {"type": "local", "dir": str(tmp_path / name)})


def test_a_removed_seal_without_its_plugin_is_refused_naming_node_stanza_and_fix(tmp_path: Path) -> None:
    drivers = {"node1": _node(tmp_path, "node1", 'storage "raft" {}\n'), "node2": _node(tmp_path, "node2", AWS)}
    with pytest.raises(RunbookError) as err:
        run_config_checks(checks_for("2.6.2", "2.7.2"), drivers, seal_type="shamir")
    msg, hint = err.value.message, err.value.hint or ""
    assert "node2" in msg and 'seal "awskms" is no longer built into OpenBao 2.7.2' in msg
    assert 'plugin "kms" "awskms"' in hint and "openbao-plugin-kms-aws" in hint and "plugin_directory" in hint
    assert err.value.evidence["stanza"] == 'seal "awskms"'
    with pytest.raises(RunbookError) as older:
        run_config_checks(checks_for("2.5.3", "2.7.2"), drivers, seal_type="shamir")
    assert "upgrade to 2.6.x first" in (older.value.hint or "")


def test_the_plugin_form_passes_only_with_the_binary_in_place(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    binary = plugins / REMOVED_SEALS["awskms"]
    binary.write_bytes(b"plugin bytes")
    digest = hashlib.sha256(b"plugin bytes").hexdigest()
    hcl = (f'plugin_directory = "{plugins}"\nplugin "kms" "awskms" {{\n  command = "{binary.name}"\n'
           f'  sha256sum = "{digest}"\n}}\n' + AWS)
    drivers = {"node1": _node(tmp_path, "node1", hcl)}
    result = run_config_checks(checks_for("2.6.2", "2.7.2"), drivers, seal_type="awskms")
    assert "ok for 2.7.2" in result["node1"]
    binary.write_bytes(b"another build")
    with pytest.raises(RunbookError, match="does not match the stanza's sha256sum"):
        run_config_checks(checks_for("2.6.2", "2.7.2"), drivers, seal_type="awskms")
    binary.unlink()
    with pytest.raises(RunbookError, match="is not there"):
        run_config_checks(checks_for("2.6.2", "2.7.2"), drivers, seal_type="awskms")


def test_without_a_readable_config_a_removed_cluster_seal_is_refused(tmp_path: Path) -> None:
    blind = {"node1": SimpleNamespace(node="node1")}
    assert run_config_checks(checks_for("2.6.1", "2.6.2"), blind, seal_type="awskms") == {}   # nothing applies
    assert "not read" in run_config_checks(checks_for("2.6.2", "2.7.2"), blind, seal_type="shamir")["node1"]
    with pytest.raises(RunbookError, match="cannot read node1's server configuration"):
        run_config_checks(checks_for("2.6.2", "2.7.2"), blind, seal_type="awskms")


def _plan() -> list:  # type: ignore[type-arg]
    rb = load_runbook(runbooks_dir() / "upgrade.yaml", actions=UPGRADE_ACTIONS)
    return resolve(rb, {**rb.variables({"to": "2.7.2"}), "leader": "node1", "standbys": ["node2", "node3"],
                        "nodes": ["node1", "node2", "node3"], "current_version": "2.6.2"})


def test_the_point_of_no_return_is_the_step_down_and_the_plan_marks_it() -> None:
    plan = _plan()
    index = pnr.pnr_index(plan)
    assert index is not None and plan[index].id == "move-leadership"
    probes = [i for i, s in enumerate(plan) if s.action == "probe"]
    assert len(probes) == 3 and probes[1] < index < probes[2]     # both standby probes come before it
    rows = [line for line in render_plan(plan, pnr=index).splitlines() if PNR_MARK in line]
    assert len(rows) == 1 and "move-leadership" in rows[0]


def test_passed_counts_a_started_step_down_and_the_clusters_version_history() -> None:
    steps = [SimpleNamespace(action="probe", status="done"), SimpleNamespace(action="step_down", status="pending")]
    state = SimpleNamespace(steps=steps)
    assert not pnr.passed(state)
    assert pnr.passed(state, history=["2.6.2", "2.7.2"], target="2.7.2")
    steps[1].status = "running"
    assert pnr.passed(state)


def test_a_probe_that_keeps_failing_raises_the_typed_error_with_its_evidence() -> None:
    trial = _Trial(node="node2", versions={"node2": "2.7.2", "node1": "2.6.2"}, budget=0.3, poll_every=0.05)

    def redirected() -> None:
        raise VaultOpsError("node2: cubbyhole/x: HTTP 307 (redirect to http://node1, not followed)")
    with pytest.raises(ProbeFailed) as err:
        trial.step("PUT /v1/cubbyhole/x", redirected)
    e = err.value
    assert (e.request, e.node, e.versions["node1"]) == ("PUT /v1/cubbyhole/x", "node2", "2.6.2")
    assert "HTTP 307" in e.error and e.evidence["attempts"] >= 2 and isinstance(e, RunbookError)


def test_a_transient_failure_is_retried_within_the_budget() -> None:
    trial = _Trial(node="node2", versions={}, budget=5, poll_every=0.01)
    answers = iter([VaultOpsError("election"), None])

    def flaky() -> None:
        answer = next(answers)
        if answer is not None:
            raise answer
    assert trial.step("PUT /v1/x", flaky) >= 0 and trial.attempts == 2
    assert direction("2.7.2", "2.6.2", "2.7.2") == "new standby -> old active"
    assert direction("2.6.2", "2.7.2", "2.7.2") == "old standby -> new active"


def test_a_not_found_before_the_value_shows_the_read_was_served_locally() -> None:
    from vaultops.errors import VaultNotFound
    from vaultops.services.upgrade.probes import _read_through_node

    class Standby:
        name = "node2"

        def __init__(self, misses: int) -> None:
            self.misses = misses

        def read(self, path: str) -> dict:
            if self.misses:
                self.misses -= 1
                raise VaultNotFound(f"node2: {path}: HTTP 404")
            return {"data": {"value": "v"}}
    trial = _Trial(node="node2", versions={}, budget=5, poll_every=0.01)
    assert _read_through_node(trial, Standby(2), "p", "v")[1] is True          # type: ignore[arg-type]
    assert _read_through_node(trial, Standby(0), "p", "v")[1] is None          # type: ignore[arg-type]
