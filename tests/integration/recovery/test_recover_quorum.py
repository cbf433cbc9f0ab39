"""`recover quorum` on real raft clusters under a write load.

To make the survivor's log end before the others' (the case where writes are really lost), the
survivor is frozen (SIGSTOP) while the leader and the other nodes go on committing; `status` then
records the high-water mark, the others are SIGKILLed and their data deleted, and the survivor
thaws. What the load generator saw acknowledged but cannot read back afterwards is what was lost;
the recovery's "could be lost" range must account for it.
"""

from __future__ import annotations

import base64
import time

import pytest
from recovery_helpers import active_client, cluster_name, commit_some, journal, shares_text, step_evidence, voters

from vaultops.services.upgrade.write_probe import WriteProbe, prepare
from vaultops.testing.sandbox import frozen, kill_and_wipe
from vaultops.testing.seed import rng

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]   # real elections under a full suite
SETTLE = 0.25   # writes acknowledged this long before the freeze have reached every follower


def _standbys(box, count: int) -> list[str]:  # type: ignore[no-untyped-def]
    leader = active_client(box).name
    names = [n.name for n in box.record.nodes if n.name != leader]
    return rng().sample(names, count)      # seeded: VAULTOPS_TEST_SEED replays the choice


def test_two_of_three_lost_the_survivor_leads_with_its_writes_then_two_replacements(make_box, cli) -> None:  # type: ignore[no-untyped-def]
    box = make_box("quorum3")
    (survivor,) = _standbys(box, 1)
    lost = [n.name for n in box.record.nodes if n.name != survivor]
    clients = box.clients(timeout=1)
    prepare(clients)
    probe = WriteProbe(clients)
    probe.start()
    time.sleep(1.0)
    with frozen(box, survivor):
        froze_at = time.monotonic()
        time.sleep(1.5)                       # the other two commit without the survivor
        probe.stop()
        rc, out, err = cli(box, "status", "--timeout", "1")    # records the high-water mark
        kill_and_wipe(box, *lost)
    rc, out, err = cli(box, "status", "--format", "json", "--timeout", "2")
    assert '"kind": "quorum-lost"' in out and "vaultops recover quorum" in out
    # a share that is not its keyholder's (right index, other bytes): refused before anything is stopped
    pid, third = box.drivers()[survivor].pid(), base64.b64decode(box.shares_b64[2])
    forged = base64.b64encode(rng().randbytes(len(third) - 1) + third[-1:]).decode()
    rc, out, err = cli(box, "recover", "quorum", "--share-stdin", "--confirm", cluster_name(box),
                       stdin="\n".join([*box.shares_b64[:2], forged]) + "\n")
    assert rc == 3 and "nothing" in err and forged not in out + err, out + err
    assert box.drivers()[survivor].pid() == pid and not [e for e in journal(box) if e["action"].startswith("recover")]
    rc, out, err = cli(box, "recover", "quorum", "--share-stdin", "--confirm", cluster_name(box),
                       stdin=shares_text(box))
    assert rc == 0, out + err
    choice = step_evidence(journal(box), "choose")
    assert choice["chosen"] == survivor
    own = choice["indexes"][survivor]["last_index"]
    first, last = choice["could_be_lost"]
    assert first == own + 1 and f"entries {first}..{last}" in out
    reader = box.client(survivor)
    missing = set(probe.missing(reader))
    assert missing, "the freeze lost no write: the test did not test anything"
    # every write the survivor had committed is there ...
    assert not {a.key for a in probe.acks if a.at < froze_at - SETTLE} & missing
    # ... and the range reported as "could be lost" accounts for every acknowledged write that is gone
    # (one raft entry each) plus writes never acknowledged, and little else
    span = last - first + 1
    assert len(missing) <= span <= len(missing) + len(probe.failed) + 8, (span, len(missing), len(probe.failed))
    assert voters(box) == {survivor: True}
    for node in lost:
        rc, out, err = cli(box, "node", "replace", node, "--share-stdin", "--yes", stdin=shares_text(box))
        assert rc == 0, out + err
    assert voters(box) == {n.name: True for n in box.record.nodes}
    assert set(probe.missing(active_client(box))) == missing     # nothing more lost on the way
    rc, out, _ = cli(box, "status")
    assert rc == 0 and "quorum-lost" not in out


def test_five_nodes_three_lost_the_most_recent_survivor_is_chosen(make_box, cli) -> None:  # type: ignore[no-untyped-def]
    box = make_box("quorum5", nodes=5)
    leader = active_client(box).name
    behind, ahead = _standbys(box, 2)          # random: which survivor falls behind first
    lost = [n.name for n in box.record.nodes if n.name not in (behind, ahead)]
    clients = box.clients(timeout=1)
    prepare(clients)
    with WriteProbe(clients) as probe:
        time.sleep(0.5)
        with frozen(box, behind):
            commit_some(box, leader)           # ahead gets entries behind does not
            time.sleep(1.0)
            with frozen(box, ahead):
                time.sleep(1.0)                # the leader and two others still have quorum (3 of 5)
                probe.stop()
                cli(box, "status", "--timeout", "1")
                kill_and_wipe(box, *lost)
    rc, out, err = cli(box, "recover", "quorum", "--share-stdin", "--confirm", cluster_name(box),
                       stdin=shares_text(box))
    assert rc == 0, out + err
    choice = step_evidence(journal(box), "choose")
    indexes = {n: v["last_index"] for n, v in choice["indexes"].items()}
    assert indexes[ahead] > indexes[behind], indexes
    assert choice["chosen"] == ahead
    assert choice["could_be_lost"] is not None
    assert voters(box) == {ahead: True, behind: True}          # the other survivor re-joined blank
    aside = step_evidence(journal(box), f"rejoin[{behind}].aside")
    assert len(aside["moved"]) == 2
    assert step_evidence(journal(box), f"rejoin[{ahead}].aside")["summary"].endswith("nothing to do")
    assert [f"vaultops node replace {n}" for n in lost] == step_evidence(journal(box), "replace")["commands"]
    assert not set(probe.missing(active_client(box))) & {a.key for a in probe.acks[: len(probe.acks) // 4]}
