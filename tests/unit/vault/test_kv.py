"""ClusterKV with scripted nodes: the active node first, what is retried, what is not, the mount created once.

The real behaviour (check-and-set, the post-mount upgrade window, permissions) is proven against
OpenBao in tests/adversarial/test_journal_tamper.py and test_runbook_guard.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from vaultops import errors
from vaultops.vault.http import Response, error_for
from vaultops.vault.kv import CASMismatch, ClusterKV, MountMissing
from vaultops.vault.models import Health

Answer = Callable[[str, str, Any], tuple[int, dict[str, Any]] | Exception]


class Node:
    """A node whose answers are scripted per call: (status, body) or an exception."""

    def __init__(self, name: str, answer: Answer, *, role: str = "standby") -> None:
        self.name = name
        self.role = role
        self.calls: list[str] = []
        self.transport = self
        self.node = name
        self.ha = self
        self._answer = answer

    def health(self) -> Health:
        if self.role == "down":
            raise errors.VaultUnreachable(f"{self.name}: unreachable", node=self.name)
        return Health(200 if self.role == "active" else 429, True, self.role == "sealed", self.role == "standby",
                      "2.7.2")

    def request(self, method: str, path: str, *, body: Any = None, auth: bool = False,
                ok: tuple[int, ...] = (200, 204), timeout: float | None = None) -> Response:
        self.calls.append(f"{method} {path}")
        got = self._answer(method, path, body)
        if isinstance(got, Exception):
            raise got
        status, data = got
        if status not in ok:
            raise error_for(status, data, node=self.name, path=path)
        return Response(status, data, {"Date": "Mon, 30 Nov 2026 11:45:41 GMT"})


def entry(version: int, data: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    return 200, {"data": {"data": data or {"x": 1},
                          "metadata": {"version": version, "created_time": "2026-11-30T11:45:30.5Z"}}}


def test_reads_go_to_the_active_node_and_give_server_ages() -> None:
    stale = Node("n1", lambda m, p, b: entry(1))
    active = Node("n2", lambda m, p, b: entry(2), role="active")
    got = ClusterKV([stale, active], "vaultops").read("leases/runbook")
    assert got is not None and got.version == 2 and stale.calls == [] and got.age == pytest.approx(10.5)


def test_a_standby_or_unreachable_node_is_skipped() -> None:
    a = Node("n1", lambda m, p, b: (429, {"errors": []}))
    b = Node("n2", lambda m, p, b: errors.VaultUnreachable("n2: unreachable", node="n2"))
    c = Node("n3", lambda m, p, b: entry(4))
    assert ClusterKV([a, b, c], "vaultops", pause=0).read("x").version == 4   # type: ignore[union-attr]


def test_the_post_mount_upgrade_window_is_waited_out() -> None:
    answers = iter([(400, {"errors": ["Upgrading from non-versioned to versioned data. This backend will be "
                                      "unavailable for a brief period"]}),
                    (400, {"errors": ["Waiting for the primary to upgrade from non-versioned to versioned data."]}),
                    (200, {"data": {"version": 1, "created_time": "2026-11-30T11:45:30Z"}})])
    node = Node("n1", lambda m, p, b: next(answers), role="active")
    assert ClusterKV([node], "vaultops", pause=0).write("x", {"a": 1}, cas=0).version == 1
    assert len(node.calls) == 3


def test_cas_mismatch_is_not_retried() -> None:
    node = Node("n1", lambda m, p, b: (400, {"errors": ["check-and-set parameter did not match the current version"]}),
                role="active")
    with pytest.raises(CASMismatch):
        ClusterKV([node], "vaultops", pause=0).write("x", {}, cas=3)
    assert len(node.calls) == 1


def test_all_sealed_fails_at_once() -> None:
    nodes = [Node(f"n{i}", lambda m, p, b: (503, {"errors": ["Vault is sealed"]}), role="sealed") for i in range(3)]
    with pytest.raises(errors.VaultSealed):
        ClusterKV(nodes, "vaultops", budget=60, pause=0.5).read("x")
    assert all(len(n.calls) == 1 for n in nodes)


def test_a_missing_mount_is_created_once_then_used() -> None:
    mounted = []

    def answer(method: str, path: str, body: Any) -> tuple[int, dict[str, Any]]:
        if path == "sys/mounts/vaultops":
            if method == "POST":
                mounted.append(body)
                return 204, {}
            return 400, {"errors": ["No secret engine mount at vaultops/"]}
        if not mounted:
            return 404, {"errors": ['no handler for route "vaultops/data/x". route entry not found.']}
        return 200, {"data": {"version": 1}}

    node = Node("n1", answer, role="active")
    with pytest.raises(MountMissing):
        ClusterKV([node], "vaultops").write("x", {}, cas=0)
    assert ClusterKV([node], "vaultops", create_mount=True).write("x", {}, cas=0).version == 1
    assert mounted == [{"type": "kv", "options": {"version": "2"}, "description": "vaultops"}]


def test_permission_denied_is_one_line_naming_the_mount() -> None:
    node = Node("n1", lambda m, p, b: (403, {"errors": ["1 error occurred:\n\t* permission denied\n\n"]}),
                role="active")
    with pytest.raises(errors.VaultAuthError) as err:
        ClusterKV([node], "ops").read("x")
    assert "\n" not in str(err.value) and "secrets enable -path=ops kv-v2" in str(err.value)


def test_a_mount_of_another_kind_is_refused() -> None:
    node = Node("n1", lambda m, p, b: (200, {"data": {"type": "kv", "options": {"version": "1"}}}), role="active")
    with pytest.raises(errors.ConfigError, match="not kv v2"):
        ClusterKV([node], "vaultops").ensure_mount()
