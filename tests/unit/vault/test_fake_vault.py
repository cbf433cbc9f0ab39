"""The one fake Vault unit tests share: real NodeClients and endpoint groups over FakeTransport."""

from __future__ import annotations

import base64
import threading
import time

import pytest

from vaultops import errors
from vaultops.testing.fake_vault import CLUSTER_ID, LOGIN_TOKEN, ROOT_TOKEN, FakeVault, make_shares
from vaultops.vault.cluster import active, find_active, wait_unsealed
from vaultops.vault.kv import CASMismatch, ClusterKV, MountMissing


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.fixture
def raws() -> list[bytes]:
    return make_shares()


def test_shares_count_once_per_nonce_and_the_threshold_unseals(raws: list[bytes]) -> None:
    vault = FakeVault(3, shares=raws)
    c = vault.client("node1")
    first = c.seal.unseal(b64(raws[0]))
    assert first.sealed and first.progress == 1 and first.nonce
    assert c.seal.unseal(b64(raws[0])).progress == 1                # a duplicate is ignored
    assert c.seal.unseal(raws[1].hex()).nonce == first.nonce       # hex is read as well
    done = c.seal.unseal(bytearray(b64(raws[2]).encode()))
    assert not done.sealed and done.cluster_id == CLUSTER_ID
    assert vault.client("node2").seal.status().sealed                # per node, never forwarded
    assert active(vault.clients()).name == "node1"                   # the first node up leads


def test_a_wrong_share_is_found_only_at_the_threshold_and_progress_is_lost(raws: list[bytes]) -> None:
    vault = FakeVault(1, shares=raws)
    c = vault.client("node1")
    c.seal.unseal(b64(raws[0]))
    c.seal.unseal(b64(make_shares()[0][:32] + b"\x99"))
    with pytest.raises(errors.VaultError, match="failed to decrypt keys") as err:
        c.seal.unseal(b64(raws[1]))
    assert err.value.status == 400 and c.seal.status().progress == 0 and c.seal.status().sealed


def test_a_follower_stays_sealed_until_it_joins_and_an_uninitialised_node_refuses(raws: list[bytes]) -> None:
    vault = FakeVault(2, shares=raws, follower=True)
    c = vault.client("node2")
    for raw in raws[:3]:
        st = c.seal.unseal(b64(raw))
    assert st.sealed and st.progress == 0
    vault.node("node2").join()
    assert not wait_unsealed(c, timeout=1).sealed
    vault.node("node1").initialized = False
    with pytest.raises(errors.VaultError, match="not initialized"):
        vault.client("node1").seal.unseal(b64(raws[0]))


def test_health_step_down_and_an_unreachable_node() -> None:
    vault = FakeVault(3, sealed=False)
    clients = vault.clients(token=ROOT_TOKEN)
    assert [c.ha.health().status_code for c in clients] == [200, 429, 429]
    clients[1].ha.step_down()                                        # forwarded to the active node
    assert vault.node("node1").stepped_down == 1 and active(clients).name == "node2"
    assert clients[0].raft.autopilot_state().leader == "node2"
    assert clients[0].raft.autopilot_state().failure_tolerance == 1
    assert clients[2].raft.configuration().servers[1].leader
    vault.node("node3").unreachable = True
    with pytest.raises(errors.VaultUnreachable, match="connection refused"):
        clients[2].seal.status()
    state = clients[0].raft.autopilot_state()
    assert not state.healthy and state.failure_tolerance == 0 and not state.servers["node3"].healthy
    assert clients[0].ha.leader().leader_address == vault.node("node2").address


def test_token_calls_need_a_known_token_and_a_sealed_node_answers_503(raws: list[bytes]) -> None:
    vault = FakeVault(1, sealed=False)
    with pytest.raises(errors.VaultAuthError, match="needs a token"):
        vault.client("node1").ha.ha_status()
    with pytest.raises(errors.VaultAuthError):
        vault.client("node1", token="s.wrong").ha.ha_status()
    vault.node("node1").sealed = True
    with pytest.raises(errors.VaultSealed):
        vault.client("node1", token=ROOT_TOKEN).ha.ha_status()
    assert vault.client("node1").ha.health().status_code == 503


def test_login_lookup_and_revoke() -> None:
    vault = FakeVault(1, sealed=False, login_policies=["backup"])
    c = vault.client("node1")
    assert c.login("approle/login", {"role_id": "r"}) == LOGIN_TOKEN == c.token
    assert c.token_lookup_self()["policies"] == ["backup"]
    c.token_revoke_self()
    assert vault.node("node1").logins == [("approle/login", {"role_id": "r"})] and vault.node("node1").revoked == 1
    with pytest.raises(errors.VaultAuthError):
        c.token_lookup_self()


def test_kv_v2_with_check_and_set_through_the_cluster_kv() -> None:
    vault = FakeVault(3, sealed=False)
    kv = ClusterKV(vault.clients(token=ROOT_TOKEN), "vaultops", pause=0)
    with pytest.raises(MountMissing):
        kv.read("leases/x")
    kv = ClusterKV(vault.clients(token=ROOT_TOKEN), "vaultops", create_mount=True, pause=0)
    assert kv.write("leases/x", {"a": 1}, cas=0).version == 1
    with pytest.raises(CASMismatch):
        kv.write("leases/x", {"a": 2}, cas=0)
    assert kv.write("leases/x", {"a": 2}, cas=1).version == 2
    entry = kv.read("leases/x")
    assert entry is not None and entry.data == {"a": 2} and entry.version == 2 and entry.age is not None
    assert kv.read("leases/x", version=1).data == {"a": 1}           # type: ignore[union-attr]


def test_a_hung_node_blocks_only_its_own_requests_until_released() -> None:
    vault = FakeVault(2, sealed=False)
    vault.node("node2").hang()
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(vault.client("node2").seal.status()))
    waiter.start()
    t0 = time.monotonic()
    assert find_active(vault.clients(), timeout=0.3).name == "node1"   # type: ignore[union-attr]
    assert time.monotonic() - t0 < 2 and got == []
    vault.node("node2").release()
    waiter.join(5)
    assert len(got) == 1 and vault.node("node2").requests >= 2


def test_init_hands_out_shares_that_unseal() -> None:
    vault = FakeVault(1, initialized=False)
    c = vault.client("node1")
    result = c.seal.init(shares=3, threshold=2)
    assert result.root_token == ROOT_TOKEN and len(result.keys_b64) == 3
    for key in result.keys_b64[:2]:
        st = c.seal.unseal(key)
    assert not st.sealed
    with pytest.raises(errors.VaultError, match="already initialized"):
        c.seal.init(shares=1, threshold=1)
