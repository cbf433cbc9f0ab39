"""A runbook edited under a halted run, and a second operator: resume checks the digest, the cluster holds the lease.

Without a server: the engine refuses an edited runbook on resume (showing a diff of the plan) unless
accepted, then adopts its plan; a guard that fails between steps halts the run.
Against real OpenBao sandboxes: an edited runbook through `runbook resume FILE`; two `upgrade run`s
from two state directories (the second refused, naming the holder) while the first rides out its
own restarts and step-down with a 6 s lease; a SIGKILLed run whose lease refuses a second operator
until its TTL passes, while a resume of the same run takes it over at once.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from vaultops.errors import RunbookError, VaultOpsError
from vaultops.journal import Journal
from vaultops.runbook.engine import Engine
from vaultops.runbook.loader import load_runbook, resolve
from vaultops.runbook.registry import Action, Registry
from vaultops.runbook.state import RunStatus, StepStatus, load_state

FROM, TO = "2.6.2", "2.7.2"

RUNBOOK = """\
name: demo
params:
  to: {required: true}
steps:
  - {name: first, action: shell, with: {node: n1, what: "{{ to }}"}}
  - name: each
    for_each: ["n1", "n2"]
    steps:
      - {name: a, action: shell, with: {node: "{{ node }}", what: a}}
      - {name: b, action: shell, with: {node: "{{ node }}", what: b}}
"""


# -- the engine, without a server ------------------------------------------------------------------
@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    done: list[str] = []
    fail: set[str] = set()

    def work(ctx: Any, *, node: str, what: str) -> dict[str, Any]:
        if f"{what}:{node}" in fail:
            raise RunbookError(f"{node} failed {what}")
        done.append(f"{what}:{node}")
        return {"summary": "ok"}

    book = tmp_path / "demo.yaml"
    book.write_text(RUNBOOK)
    messages: list[str] = []
    actions = Registry({"shell": Action("shell", work)})
    eng = Engine(state_path=tmp_path / "state.json", ctx=object(), actions=actions,
                 journal=Journal(tmp_path / "j.jsonl"),
                 emit=messages.append)
    return {"done": done, "fail": fail, "book": book, "engine": eng, "actions": actions, "messages": messages,
            "tmp": tmp_path}


def _halted_run(w: dict[str, Any]) -> Any:
    rb = load_runbook(w["book"], actions=w["actions"])
    w["fail"].add("a:n2")
    with pytest.raises(RunbookError):
        w["engine"].start(rb, {"to": "2.7.2"}, resolve(rb, {"to": "2.7.2"}))
    w["fail"].clear()
    return load_state(w["tmp"] / "state.json")


def test_resume_refuses_an_edited_runbook_and_shows_what_changed(world: dict[str, Any]) -> None:
    state = _halted_run(world)
    world["book"].write_text(RUNBOOK.replace("what: b}", "what: bee}"))
    with pytest.raises(RunbookError) as err:
        world["engine"].resume(state, runbook=load_runbook(world["book"], actions=world["actions"]))
    assert "was edited after run" in err.value.message and "each[n1].b" in err.value.message
    assert "--accept-changed-runbook" in (err.value.hint or "") and "\n" not in str(err.value)
    shown = "\n".join(world["messages"])
    assert '-each[n2].b: shell {"node": "n2", "what": "b"}' in shown and '"what": "bee"' in shown
    assert load_state(world["tmp"] / "state.json").status == RunStatus.HALTED   # nothing ran
    assert world["done"] == ["2.7.2:n1", "a:n1", "b:n1"]


def test_accepting_the_edit_runs_the_new_plan_keeping_unchanged_done_steps(world: dict[str, Any]) -> None:
    state = _halted_run(world)
    world["book"].write_text(RUNBOOK.replace("what: b}", "what: bee}"))
    edited = load_runbook(world["book"], actions=world["actions"])
    final = world["engine"].resume(state, runbook=edited, accept_changed=True)
    assert final.status == RunStatus.DONE
    # each[n1].b changed: it runs again with its new parameters; first and each[n1].a stay done
    assert world["done"] == ["2.7.2:n1", "a:n1", "b:n1", "bee:n1", "a:n2", "bee:n2"]
    assert final.runbook_digest == load_runbook(world["book"], actions=world["actions"]).digest
    assert any(h["event"] == "runbook-changed" for h in final.history)
    actions = [e["action"] for e in Journal(world["tmp"] / "j.jsonl").entries()]
    assert "runbook.changed" in actions


@pytest.mark.parametrize("edit", ["comment", "new-step", "removed-step", "new-required-param", "broken"])
def test_every_kind_of_edit_is_refused(world: dict[str, Any], edit: str) -> None:
    state = _halted_run(world)
    text = {"comment": RUNBOOK + "# just a comment\n",
            "new-step": RUNBOOK + '  - {name: extra, action: shell, with: {node: n3, what: x}}\n',
            "removed-step": RUNBOOK.replace('  - {name: first, action: shell, with: {node: n1, what: "{{ to }}"}}\n',
                                            ""),
            "new-required-param": RUNBOOK.replace("  to: {required: true}", "  to: {required: true}\n  "
                                                  "region: {required: true}"),
            "broken": RUNBOOK.replace("action: shell, with: {node: n1", "action: nope, with: {node: n1")}[edit]
    world["book"].write_text(text)
    try:
        rb = load_runbook(world["book"], actions=world["actions"])
    except RunbookError:
        assert edit == "broken"      # an unknown action does not even load: refused all the same
        return
    with pytest.raises(RunbookError, match="was edited after run"):
        world["engine"].resume(state, runbook=rb)
    assert world["done"] == ["2.7.2:n1", "a:n1", "b:n1"]


def test_an_unchanged_runbook_resumes(world: dict[str, Any]) -> None:
    state = _halted_run(world)
    rb = load_runbook(world["book"], actions=world["actions"])
    assert world["engine"].resume(state, runbook=rb).status == RunStatus.DONE


def test_a_failing_guard_halts_before_the_next_step(world: dict[str, Any]) -> None:
    rb = load_runbook(world["book"], actions=world["actions"])
    calls: list[int] = []

    def guard() -> None:
        calls.append(1)
        if len(calls) == 3:
            raise RunbookError("this run lost the cluster's run lease to run abc (upgrade) of bob")

    with pytest.raises(RunbookError, match="halted before each\\[n1\\].b: this run lost"):
        world["engine"].start(rb, {"to": "2.7.2"}, resolve(rb, {"to": "2.7.2"}), guard=guard)
    state = load_state(world["tmp"] / "state.json")
    assert state.status == RunStatus.HALTED and world["done"] == ["2.7.2:n1", "a:n1"]
    assert state.current is not None and state.current.status == StepStatus.PENDING


# -- real sandboxes --------------------------------------------------------------------------------
def _cli(box: Any, *argv: str, state: Path, stdin: str = "", env: dict[str, str] | None = None,
         timeout: float = 300) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "VAULTOPS_STATE_DIR": str(state), **(env or {})}
    return subprocess.run([sys.executable, "-m", "vaultops", "--config", str(box.config_path), *argv],
                          input=stdin, capture_output=True, text=True, timeout=timeout, env=full)


def _popen(box: Any, *argv: str, state: Path, stdin: str) -> subprocess.Popen[str]:
    full = {**os.environ, "VAULTOPS_STATE_DIR": str(state)}
    state.mkdir(parents=True, exist_ok=True)
    shares = state.parent / f"{state.name}-stdin"
    shares.write_text(stdin)
    with open(shares) as fh:
        return subprocess.Popen([sys.executable, "-m", "vaultops", "--config", str(box.config_path), *argv],
                                stdin=fh, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full)


def _shares(box: Any) -> str:
    return "\n".join(box.shares_b64[:3]) + "\n"


def _one_error(proc: subprocess.CompletedProcess[str]) -> str:
    errors = [line for line in proc.stderr.splitlines() if line.startswith("vaultops: error:")]
    assert "Traceback" not in proc.stderr and len(errors) == 1, proc.stderr[-1500:]
    return errors[0]


def _lease(box: Any) -> dict[str, Any]:
    client = box.clients()[0]
    return client.read("vaultops/data/leases/runbook")["data"]["data"]


def _add_lease_settings(box: Any, ttl: float) -> None:
    text = box.config_path.read_text()
    assert "\nupgrade:" not in text
    box.config_path.write_text(text + f"upgrade:\n  lease: {{ttl_seconds: {ttl}}}\n")


@pytest.fixture
def make_box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Any]]:
    from vaultops.testing.sandbox import sandbox_factory

    with sandbox_factory(tmp_path_factory.mktemp, version=FROM) as make:
        yield make


CHECKS = """\
name: checks
params:
  to: {required: true}
steps:
  - {name: first, action: shell, with: {command: "true"}}
  - {name: postflight, action: shell, with: {command: "echo {{ to }}"}}
"""


@pytest.mark.integration
def test_runbook_resume_of_an_edited_file_is_refused_until_accepted(make_box: Callable[..., Any],
                                                                    tmp_path: Path) -> None:
    box = make_box("rbedit", nodes=1, version=None)
    book = tmp_path / "checks.yaml"
    book.write_text(CHECKS)
    state = tmp_path / "state"
    killed = _cli(box, "runbook", "run", str(book), "--set", f"to={TO}", state=state,
                  env={"VAULTOPS_TEST_HOOKS": "1", "VAULTOPS_TEST_KILL_AT": "0"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-800:]
    book.write_text(CHECKS.replace("postflight, action: shell", "post-check, action: shell"))
    refused = _cli(box, "runbook", "resume", str(book), state=state)
    assert refused.returncode == RunbookError.exit_code
    line = _one_error(refused)
    assert "was edited after run" in line and "post-check" in line and "--accept-changed-runbook" in line
    assert "-postflight: shell" in refused.stdout and "+post-check: shell" in refused.stdout
    accepted = _cli(box, "runbook", "resume", str(book), "--accept-changed-runbook", state=state)
    assert accepted.returncode == 0, accepted.stderr[-1500:]
    run = load_state(state / "runs" / f"{box.config.cluster_name}-checks.json")
    assert run.status == RunStatus.DONE and [s.id for s in run.steps] == ["first", "post-check"]
    assert _lease(box)["state"] == "released"


@pytest.mark.integration
def test_two_operators_two_state_dirs_one_cluster(make_box: Callable[..., Any], tmp_path: Path) -> None:
    """A runs a whole upgrade with a 6 s lease renewed through its own restarts and step-down;
    B, with another state directory, is refused with one line naming A's run, operator, host and since."""
    box = make_box("twoops")
    _add_lease_settings(box, 6)
    alice = _popen(box, "upgrade", "run", "--to", TO, "--share-stdin", "--operator", "alice",
                   state=tmp_path / "alice", stdin=_shares(box))
    try:
        run_file = tmp_path / "alice" / "runs" / f"{box.config.cluster_name}-upgrade.json"
        deadline = time.monotonic() + 120
        while not (run_file.exists() and load_state(run_file).done_count >= 1):
            if alice.poll() is not None:
                pytest.fail(f"alice's run ended: {alice.communicate()[1][-1500:]}")
            assert time.monotonic() < deadline, "alice's run did not get going"
            time.sleep(0.3)
        run_id = load_state(run_file).run_id
        for argv in (("upgrade", "run", "--to", TO), ("runbook", "run", "runbooks/upgrade.yaml", "--set", f"to={TO}")):
            bob = _cli(box, *argv, "--share-stdin", "--operator", "bob", state=tmp_path / "bob", stdin=_shares(box))
            assert bob.returncode == RunbookError.exit_code
            line = _one_error(bob)
            assert f"run {run_id} (upgrade) of alice" in line and socket.gethostname() in line and "since" in line
            assert not (tmp_path / "bob" / "runs").exists() or not list((tmp_path / "bob" / "runs").glob("*.json"))
        out, err = alice.communicate(timeout=400)
    finally:
        if alice.poll() is None:
            alice.kill()
            alice.communicate(timeout=30)
    assert alice.returncode == 0, err[-2000:]
    assert {c.ha.health().version for c in box.clients()} == {TO}
    assert load_state(run_file).status == RunStatus.DONE
    lease = _lease(box)
    assert lease["state"] == "released" and lease["holder"]["run_id"] == run_id
    # `upgrade run` anchored the journal in the cluster's KV when it finished
    verify = _cli(box, "journal", "verify", state=tmp_path / "alice")
    assert verify.returncode == 0 and "anchors agree" in verify.stdout, verify.stdout + verify.stderr


@pytest.mark.integration
def test_a_killed_runs_lease_refuses_others_until_its_ttl_and_its_own_resume_takes_it_over(
        make_box: Callable[..., Any], tmp_path: Path) -> None:
    from vaultops.config import parse_config_file
    from vaultops.services.lease import run_lease

    ttl = 8
    box = make_box("upttl")
    _add_lease_settings(box, ttl)
    kill_at = {"VAULTOPS_TEST_HOOKS": "1"}
    a = _cli(box, "upgrade", "run", "--to", TO, "--share-stdin", "--operator", "alice", state=tmp_path / "alice",
             stdin=_shares(box), env={**kill_at, "VAULTOPS_TEST_KILL_AT": "0"})
    assert a.returncode == -signal.SIGKILL, a.stderr[-1000:]
    run_file = tmp_path / "alice" / "runs" / f"{box.config.cluster_name}-upgrade.json"
    run_id = load_state(run_file).run_id

    refused = _cli(box, "upgrade", "run", "--to", TO, "--share-stdin", "--operator", "bob", state=tmp_path / "bob",
                   stdin=_shares(box))
    line = _one_error(refused)
    assert refused.returncode == RunbookError.exit_code and f"run {run_id} (upgrade) of alice" in line
    assert "expires in" in line

    t0 = time.monotonic()
    resumed = _cli(box, "upgrade", "resume", "--share-stdin", "--operator", "alice", state=tmp_path / "alice",
                   stdin=_shares(box), env={**kill_at, "VAULTOPS_TEST_KILL_AT": "1"})
    assert resumed.returncode == -signal.SIGKILL, resumed.stderr[-1000:]
    assert time.monotonic() - t0 < ttl + 60          # no wait for the TTL: its own lease, taken over at once
    assert load_state(run_file).steps[1].status == StepStatus.DONE
    killed_at = time.monotonic()

    again = _cli(box, "upgrade", "run", "--to", TO, "--share-stdin", "--operator", "bob", state=tmp_path / "bob",
                 stdin=_shares(box))
    assert again.returncode == RunbookError.exit_code and f"run {run_id}" in _one_error(again)

    time.sleep(max(0.0, ttl + 1.5 - (time.monotonic() - killed_at)))
    cfg = parse_config_file(box.config_path)
    with run_lease(cfg, box.clients(), run_id="bob-run-1", runbook="upgrade", operator="bob") as lease:
        assert lease is not None and lease.replaced is not None and lease.replaced.run_id == run_id
        assert _lease(box)["holder"]["run_id"] == "bob-run-1"
        blocked = _cli(box, "upgrade", "resume", "--share-stdin", "--operator", "alice", state=tmp_path / "alice",
                       stdin=_shares(box))
        assert blocked.returncode == RunbookError.exit_code and "run bob-run-1 (upgrade) of bob" in _one_error(blocked)
    assert _lease(box)["state"] == "released"

    final = _cli(box, "upgrade", "resume", "--share-stdin", "--operator", "alice", state=tmp_path / "alice",
                 stdin=_shares(box))
    assert final.returncode == 0, final.stderr[-2000:]
    assert {c.ha.health().version for c in box.clients()} == {TO}


@pytest.mark.integration
def test_renewal_that_finds_another_holder_halts_and_never_overwrites_it(make_box: Callable[..., Any]) -> None:
    from vaultops.config import parse_config_file
    from vaultops.services.lease import run_lease
    from vaultops.vault.kv import ClusterKV

    box = make_box("lease1", nodes=1, version=None)
    _add_lease_settings(box, 3)
    cfg = parse_config_file(box.config_path)
    kv = ClusterKV(box.clients(), "vaultops")
    with run_lease(cfg, box.clients(), run_id="mine", runbook="upgrade", operator="alice") as lease:
        assert lease is not None
        current = kv.read("leases/runbook")
        assert current is not None
        thief = {**current.data, "holder": {**current.data["holder"], "run_id": "theirs", "operator": "mallory"}}
        kv.write("leases/runbook", thief, cas=current.version)
        deadline = time.monotonic() + 10
        while lease.lost is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert lease.lost is not None and "run theirs" in lease.lost and "mallory" in lease.lost
        with pytest.raises(RunbookError, match="lost the cluster's run lease to run theirs"):
            lease.check()
    after = kv.read("leases/runbook")
    assert after is not None and after.data["holder"]["run_id"] == "theirs" and after.data["state"] == "held"


@pytest.mark.integration
def test_lease_settings_and_a_missing_mount_without_permission(make_box: Callable[..., Any]) -> None:
    from vaultops.config import parse_config_file
    from vaultops.errors import ConfigError, VaultAuthError
    from vaultops.services.lease import lease_settings, run_lease

    box = make_box("lease2", nodes=1, version=None)
    text = box.config_path.read_text()
    for bad in ("{ttl_seconds: 0}", "{ttl_seconds: yes}", "{mount: ../x}", "{colour: red}", "[1]"):
        box.config_path.write_text(text + f"upgrade:\n  lease: {bad}\n")
        with pytest.raises(ConfigError) as err:
            lease_settings(parse_config_file(box.config_path))
        assert "upgrade.lease" in str(err.value) and "\n" not in str(err.value)
    box.config_path.write_text(text + "upgrade:\n  lease: {mount: runleases}\n")
    cfg = parse_config_file(box.config_path)
    client = box.clients()[0]
    weak = client.write("auth/token/create", {"policies": ["default"], "ttl": "10m"})["auth"]["client_token"]
    clients = box.clients()
    for c in clients:
        c.token = weak
    with pytest.raises(VaultOpsError) as err:
        with run_lease(cfg, clients, run_id="x", runbook="upgrade", operator=None):
            pass
    assert isinstance(err.value, VaultAuthError) and "secrets enable -path=runleases kv-v2" in str(err.value)
    assert "\n" not in str(err.value)
