"""The one share-submission path (services/ceremony/submit.py) against the in-memory fake nodes.

Each case is a behaviour measured on OpenBao (field notes): a raft joiner takes shares only once it
says initialised; a byte-identical duplicate is ignored; a wrong share is found only at the threshold
(400, progress lost); after the last share a joining follower answers sealed for a while; a join that
never completes is tried again. Real servers: tests/integration/ceremony and the upgrade tests.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from ceremony_fakes import FakeNode, b64, fake_cluster, make_shares

from vaultops.errors import SandboxError, SecurityError, VaultError
from vaultops.services.ceremony import submit
from vaultops.services.ceremony.shares import Share
from vaultops.services.ceremony.types import SendOutcome
from vaultops.services.sandbox.bootstrap import unseal_nodes
from vaultops.services.upgrade.unseal import SharesUnsealer


def script(node: FakeNode, steps: dict[int, Callable[[], None]]) -> list[int]:
    """Run steps[n] just before the node answers its n-th seal-status (1-based); returns the
    number of the status call each share arrived after."""
    seal = node.seal
    real_status, real_unseal = seal.status, seal.unseal
    asked = [0]
    arrivals: list[int] = []

    def status() -> Any:
        asked[0] += 1
        if asked[0] in steps:
            steps[asked[0]]()
        return real_status()

    def unseal(key: Any, *, timeout: float | None = None) -> Any:
        arrivals.append(asked[0])
        return real_unseal(bytes(key) if isinstance(key, bytearray) else key, timeout=timeout)
    seal.status, seal.unseal = status, unseal  # type: ignore[method-assign]
    return arrivals


def become(node: FakeNode, **state: object) -> Callable[[], None]:
    def change() -> None:
        for k, v in state.items():
            setattr(node.seal, k, v)
    return change


def test_a_raft_joiner_gets_shares_only_once_it_says_initialised_and_is_followed_until_unsealed() -> None:
    raws = make_shares()
    node = fake_cluster(raws, 1, initialized=False, follower=True)[0]
    arrivals = script(node, {4: become(node, initialized=True), 9: node.seal.join})
    res = submit.unseal_node(node, [b64(r) for r in raws[:3]], timeout=5, interval=0.01)  # type: ignore[arg-type]
    assert not res.sealed and not res.rejected
    assert (res.sent, res.rounds) == (3, 1)
    assert min(arrivals) >= 4  # nothing was sent before the node said initialised
    assert node.seal.calls == 3


def test_a_byte_identical_duplicate_is_ignored_and_the_next_share_counts() -> None:
    raws = make_shares()
    node = fake_cluster(raws, 1)[0]
    st = node.seal.status()
    first = submit.send(node, b64(raws[0]), before=st)  # type: ignore[arg-type]
    again = submit.send(node, b64(raws[0]), before=first.status)  # type: ignore[arg-type]
    assert (first.outcome, again.outcome) == (SendOutcome.ACCEPTED, SendOutcome.DUPLICATE)
    assert again.status.progress == 1 and again.status.nonce == first.status.nonce
    res = submit.unseal_node(node, [b64(raws[1]), b64(raws[1]), b64(raws[2])], timeout=5)  # type: ignore[arg-type]
    assert not res.sealed and res.sent == 3


def test_a_wrong_share_is_found_at_the_threshold_and_nothing_more_is_sent() -> None:
    raws = make_shares()
    node = fake_cluster(raws, 1)[0]
    forged = os.urandom(32) + bytes([99])
    shares = [b64(raws[0]), b64(forged), b64(raws[1]), b64(raws[2])]
    res = submit.unseal_node(node, shares, timeout=5)  # type: ignore[arg-type]
    assert res.sealed and "failed to decrypt" in res.rejected
    assert res.sent == 3 and node.seal.calls == 3  # the fourth share was not sent into a new attempt
    assert (res.status.progress, res.status.nonce) == (0, "")
    # one share at a time, as the ceremony sends: REJECTED names the server's reason
    first = submit.send(node, b64(raws[0]), before=node.seal.status())  # type: ignore[arg-type]
    second = submit.send(node, b64(forged), before=first.status)  # type: ignore[arg-type]
    last = submit.send(node, b64(raws[1]), before=second.status)  # type: ignore[arg-type]
    assert last.outcome is SendOutcome.REJECTED and last.status.progress == 0 and last.detail


def test_the_upgrade_unsealer_says_a_wrong_share_was_rejected_at_the_threshold() -> None:
    raws = make_shares()
    node = fake_cluster(raws, 1)[0]
    unsealer = SharesUnsealer([b64(raws[0]), b64(raws[1]), b64(os.urandom(32) + bytes([99]))])
    with pytest.raises(SecurityError, match="node1 rejected the shares at the threshold"):
        unsealer.unseal(node, node="node1")  # type: ignore[arg-type]


def test_an_unreachable_node_is_one_error_naming_it() -> None:
    raws = make_shares()
    node = fake_cluster(raws, 1, unreachable=True)[0]
    with pytest.raises(SandboxError) as err:
        submit.unseal_node(node, [b64(r) for r in raws[:3]], timeout=0.3, error=SandboxError)  # type: ignore[arg-type]
    message = str(err.value)
    assert "node1" in message and "unreachable" in message and "\n" not in message
    assert node.seal.calls == 0
    with pytest.raises(VaultError, match="unreachable"):
        submit.status(node, retry_for=0.2)  # type: ignore[arg-type]


def test_a_node_unreachable_for_a_moment_is_asked_again() -> None:
    raws = make_shares()
    node = fake_cluster(raws, 1, unreachable=True)[0]
    script(node, {3: become(node, unreachable=False)})
    res = submit.unseal_node(node, [b64(r) for r in raws[:3]], timeout=5, interval=0.01)  # type: ignore[arg-type]
    assert not res.sealed and res.sent == 3
    node = fake_cluster(raws, 1, unreachable=True)[0]
    calls = [0]
    real = node.seal.status

    def status() -> Any:
        calls[0] += 1
        node.seal.unreachable = calls[0] < 3
        return real()
    node.seal.status = status  # type: ignore[method-assign]
    assert submit.status(node, retry_for=5).sealed and calls[0] == 3  # type: ignore[arg-type]


def test_a_join_that_never_completes_is_tried_again_with_the_same_shares() -> None:
    raws = make_shares()
    node = fake_cluster(raws, 1, follower=True)[0]
    joined = [False]
    real_unseal = node.seal.unseal

    def unseal(key: Any, *, timeout: float | None = None) -> Any:
        st = real_unseal(key, timeout=timeout)
        if node.seal.joining and node.seal.calls >= 6:  # the second attempt joins
            joined[0] = True
            node.seal.join()
            return node.seal.status()
        if node.seal.joining:
            node.seal.joining = False  # the first join attempt failed: sealed, progress 0, forever
        return st
    node.seal.unseal = unseal  # type: ignore[method-assign]
    res = submit.unseal_node(node, [b64(r) for r in raws[:3]], timeout=5, join_timeout=0.2,  # type: ignore[arg-type]
                             interval=0.02)
    assert joined[0] and not res.sealed
    assert (res.sent, res.rounds) == (6, 2)


def test_a_join_that_never_completes_at_all_ends_still_sealed_when_the_time_is_up() -> None:
    raws = make_shares()
    node = fake_cluster(raws, 1, follower=True)[0]
    res = submit.unseal_node(node, [b64(r) for r in raws[:3]], timeout=0.5, join_timeout=0.1,  # type: ignore[arg-type]
                             interval=0.02)
    assert res.sealed and not res.rejected and res.rounds >= 2 and res.sent == 3 * res.rounds


def test_shares_are_sent_from_buffers_zeroed_after_each_send() -> None:
    raws = make_shares()
    node = fake_cluster(raws, 1)[0]
    seen: list[Any] = []
    real = node.seal.unseal

    def unseal(key: Any, *, timeout: float | None = None) -> Any:
        seen.append(key)
        return real(bytes(key), timeout=timeout)
    node.seal.unseal = unseal  # type: ignore[method-assign]
    shares = [Share(bytearray(r)) for r in raws[:3]]
    assert not submit.unseal_node(node, shares, timeout=5).sealed  # type: ignore[arg-type]
    assert len(seen) == 3 and all(isinstance(k, bytearray) and not any(k) for k in seen)
    assert all(any(s.raw) for s in shares)  # the Shares are the caller's to wipe


def test_the_sandbox_unseals_leader_and_joiners_without_state_on_the_clients() -> None:
    raws = make_shares()
    leader, *followers = fake_cluster(raws, 3)
    for f in followers:
        f.seal.initialized, f.seal.follower = False, True
        script(f, {3: become(f, initialized=True), 8: f.seal.join})
    before = [dict(vars(n)) for n in (leader, *followers)]
    unseal_nodes([leader, *followers], [b64(r) for r in raws[:3]], timeout=5)  # type: ignore[list-item]
    assert not any(n.seal.sealed for n in (leader, *followers))
    assert [set(vars(n)) for n in (leader, *followers)] == [set(b) for b in before]
