"""Issue #18 items 1-3 on a real 2.6.2 -> 2.7.2 raft cluster whose cluster ports go through ClusterLinks:
the plan prints the release checks and the point of no return; a node configured with a seal 2.7 no
longer builds in is refused by the preflight before anything is touched; forwarding broken on purpose
in the mixed phase halts the run at the probe (before the point of no return) with the evidence, and
once it is healed the run resumes to the end with every probe passing and no acknowledged write lost.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from upgrade_helpers import FROM, TO, ForwardingCut, active, journal, shares_text, versions

from vaultops.errors import ProbeFailed, RunbookError
from vaultops.journal import journal_for
from vaultops.runbook.state import RunStatus, StepStatus, load_state
from vaultops.services.upgrade.context import Prompter, build_context
from vaultops.services.upgrade.write_probe import WriteProbe, prepare
from vaultops.services.upgrade.service import default_runbook, resume_run, start_run, state_path
from vaultops.services.upgrade.unseal import SharesUnsealer
from vaultops.testing.sandbox import Sandbox, start_linked_sandbox

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def linked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, dict]]:
    box, links = start_linked_sandbox(tmp_path_factory.mktemp("uprobe"), name="uprobe", version=FROM,
                                      raft_healthy=True)
    try:
        yield box, links
    finally:
        box.stop()
        for link in links.values():
            link.stop()


def _context(box: Sandbox, *, gate_timeout: float = 60):  # type: ignore[no-untyped-def]
    return build_context(box.config, clients=box.clients(), drivers=box.drivers(), journal=journal_for(box.config),
                         unsealer=SharesUnsealer(box.shares_b64[:3]), prompter=Prompter(assume_yes=True),
                         gate_timeout=gate_timeout, connect=lambda: box.clients())


def test_plan_prints_the_release_checks_and_marks_the_point_of_no_return(linked, cli) -> None:  # type: ignore[no-untyped-def]
    box, _ = linked
    rc, out, err = cli(box, "upgrade", "plan", "--to", TO, "--no-color")
    assert rc == 0, err
    assert f"release checks {FROM} -> {TO}" in out
    assert "seal-plugins-2.7 (config, since 2.7.0)" in out
    marked = [line for line in out.splitlines() if "<- point of no return" in line]
    assert len(marked) == 1 and "move-leadership" in marked[0] and "step_down" in marked[0]
    assert "point of no return: step" in out and "restoring the pre-upgrade snapshot" in out
    rc, out, _ = cli(box, "upgrade", "plan", "--to", TO, "--format", "json")
    doc = json.loads(out)
    assert doc["point_of_no_return"]["step"] == "move-leadership"
    assert [c["id"] for c in doc["release"]["checks"]] == ["seal-plugins-2.7"] and doc["release"]["known"]
    # probes are planned after each standby and after leadership moves
    probes = [s["id"] for s in doc["steps"] if s["action"] == "probe"]
    assert len(probes) == 3 and probes[-1] == "probe-old-active"


def test_preflight_refuses_a_removed_seal_before_anything_is_touched(linked, cli) -> None:  # type: ignore[no-untyped-def]
    box, _ = linked
    leader = active(box).name
    node = next(n for n in ("node1", "node2", "node3") if n != leader)
    config = Path(box.drivers()[node].config_file)
    original = config.read_text()
    config.write_text(original + 'seal "awskms" {\n  region = "eu-west-1"\n  kms_key_id = "alias/x"\n}\n')
    before = len(journal(box)) if (box.dir / "journal.jsonl").exists() else 0
    try:
        rc, _, err = cli(box, "upgrade", "run", "--to", TO, "--share-stdin", stdin=shares_text(box))
    finally:
        config.write_text(original)
    assert rc == 8, err
    assert f"{node}: {config}: seal \"awskms\" is no longer built into OpenBao {TO}" in err
    assert 'plugin "kms" "awskms"' in err and "openbao-plugin-kms-aws" in err and "plugin_directory" in err
    steps = [e for e in journal(box)[before:] if e["action"] == "runbook.step"]
    assert steps == []                                   # not even the snapshot
    assert set(versions(box).values()) == {FROM} and active(box).name == leader
    state = load_state(state_path(box.config, "upgrade"))
    assert state.status == RunStatus.HALTED and state.halt["step"] == "preflight"
    assert state.halt["evidence"]["stanza"] == 'seal "awskms"' and state.halt["evidence"]["node"] == node


def test_broken_forwarding_halts_at_the_probe_then_the_healed_run_completes(linked, cli) -> None:  # type: ignore[no-untyped-def]
    box, links = linked
    leader = active(box).name
    first = next(n for n in ("node1", "node2", "node3") if n != leader)
    break_forwarding = ForwardingCut(links[leader], first, box.drivers()[first])

    clients = box.clients(timeout=2)
    prepare(clients)
    with WriteProbe(clients) as load:
        with pytest.raises(RunbookError) as halted:
            start_run(box.config, _context(box), runbook_path=default_runbook(), params={"to": TO},
                      listener=break_forwarding, restart=True)
        probe = halted.value.__cause__
        assert isinstance(probe, ProbeFailed), halted.value
        assert probe.node == first and probe.versions == {first: TO, leader: FROM}
        assert probe.request.startswith("PUT /v1/") and probe.error
        assert "HTTP 307" in probe.error    # the standby could not forward and fell back to redirecting
        assert links[leader].refused >= 1
        state = load_state(state_path(box.config, "upgrade"))
        assert state.status == RunStatus.HALTED and state.halt["step"] == f"standby[{first}].probe"
        assert state.halt["evidence"]["node"] == first and state.halt["evidence"]["versions"][leader] == FROM
        pnr = next(s for s in state.steps if s.action == "step_down")
        assert pnr.status == StepStatus.PENDING and active(box).name == leader   # before the point of no return

        links[leader].heal()
        resume_run(box.config, _context(box))
    assert set(versions(box).values()) == {TO}
    assert len(load.acks) > 100 and load.missing(active(box)) == []
    rc, out, _ = cli(box, "upgrade", "status", "--format", "json")
    assert rc == 0
    probes = [s for s in json.loads(out)["steps"] if s["action"] == "probe"]
    assert [s["status"] for s in probes] == ["done"] * 3
    directions = [s["evidence"]["probe"]["direction"] for s in probes]
    assert directions == ["new standby -> old active"] * 2 + ["old standby -> new active"]
    assert all(s["evidence"]["probe"]["versions"] and "served_locally" in s["evidence"]["probe"] for s in probes)


def test_the_release_table_is_right_that_2_7_has_no_builtin_awskms(tmp_path: Path) -> None:
    """The fact behind seal-plugins-2.7, on the real binaries: 2.7.2 refuses the stanza at start-up
    (the node does not come back), 2.6.2 still knows it (and fails only on missing AWS credentials)."""
    import subprocess

    from vaultops import releases

    config = tmp_path / "aws.hcl"
    config.write_text('storage "inmem" {}\nlistener "tcp" {\n  address = "127.0.0.1:0"\n  tls_disable = true\n}\n'
                      'seal "awskms" {\n  region = "eu-west-1"\n  kms_key_id = "alias/x"\n}\n')
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}    # no AWS credentials reach the server
    new = subprocess.run([str(releases.ensure(TO)), "server", f"-config={config}"], capture_output=True,
                         text=True, timeout=30, env=env)
    assert new.returncode != 0 and 'Error configuring seal "awskms": unknown wrapper: awskms' in new.stderr + new.stdout
    old = subprocess.run([str(releases.ensure(FROM)), "server", f"-config={config}"], capture_output=True,
                         text=True, timeout=30, env=env)
    assert old.returncode != 0 and "unknown wrapper" not in old.stderr + old.stdout


def test_broken_forwarding_on_the_postgresql_pair_halts_at_the_probe(tmp_path: Path) -> None:
    """The same gate on external storage: the upgraded standby of an Active-Standby pair forwards over
    the cluster port too, and a cut there halts the run before the step-down with the evidence."""
    box, links = start_linked_sandbox(tmp_path, name="uprobepg", nodes=2, storage="postgresql", version=FROM,
                                      raft_healthy=True)   # for a pair: ha-status lists both
    try:
        leader = active(box).name
        standby = next(n for n in ("node1", "node2") if n != leader)
        drivers = box.drivers()
        break_forwarding = ForwardingCut(links[leader], standby, drivers[standby])
        ctx = build_context(box.config, clients=box.clients(), drivers=drivers, journal=journal_for(box.config),
                            unsealer=SharesUnsealer(box.shares_b64[:3]), prompter=Prompter(assume_yes=True),
                            gate_timeout=60, backup="skip")
        with pytest.raises(RunbookError) as halted:
            start_run(box.config, ctx, runbook_path=default_runbook(), params={"to": TO}, listener=break_forwarding)
        probe = halted.value.__cause__
        assert isinstance(probe, ProbeFailed) and probe.node == standby, halted.value
        assert probe.versions == {standby: TO, leader: FROM}
        assert active(box).name == leader and versions(box)[leader] == FROM
    finally:
        box.stop()
        for link in links.values():
            link.stop()
