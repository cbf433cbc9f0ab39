"""Unseal ceremonies against a real 3-node raft cluster, every node sealed at the start."""

from __future__ import annotations

import json
import subprocess
import threading

import pytest
from ceremony_helpers import (VAULTOPS, foreign_share, keyholder_share, run_vaultops, statuses,
                              wait_for)

from vaultops.journal import Journal
from vaultops.services.ceremony import shares as codecs
from vaultops.services.ceremony.unseal import EventKind, NodePhase, UnsealCeremony
from vaultops.services.ceremony.manifest import Manifest
from vaultops.testing.sandbox import Sandbox

pytestmark = pytest.mark.integration


def journal_actions(box: Sandbox) -> list[dict]:
    return list(Journal(box.dir / "journal.jsonl").entries())


def progress(box: Sandbox) -> dict[str, int]:
    return {name: (st.progress if st else -1) for name, st in statuses(box).items()}


def ceremony(box: Sandbox, **kwargs: object) -> UnsealCeremony:
    return UnsealCeremony(box.clients(token=False), manifest=Manifest.load(box.dir / "keyholders.yaml"),
                          manifest_path=box.dir / "keyholders.yaml",
                          journal=Journal(box.dir / "journal.jsonl", cluster=box.config.cluster_name),
                          **kwargs)  # type: ignore[arg-type]


def test_three_named_shares_unseal_every_node(sealed3: Sandbox) -> None:
    lines = "".join(f"{n}: {keyholder_share(sealed3, n)}\n" for n in ("alice", "bob", "carol"))
    r = run_vaultops(sealed3, "unseal", "--share-stdin", "--format", "json", stdin=lines)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout[r.stdout.index("{"):])
    assert result["all_unsealed"] and result["checked"]
    assert all(not st.sealed for st in statuses(sealed3).values())
    submitted = [e for e in journal_actions(sealed3) if e["action"] == "unseal.share-submitted"]
    assert [e["details"]["keyholder"] for e in submitted[-3:]] == ["alice", "bob", "carol"]
    assert submitted[-1]["details"]["nodes"] == ["node1", "node2", "node3"]


def test_bare_shares_are_matched_to_their_keyholders(sealed3: Sandbox) -> None:
    lines = "".join(keyholder_share(sealed3, n) + "\n" for n in ("erin", "dave", "bob"))
    r = run_vaultops(sealed3, "unseal", "--share-stdin", stdin=lines)
    assert r.returncode == 0, r.stderr
    assert "keyholder erin submitted share #" in r.stdout
    assert "keyholder dave submitted" in r.stdout and "keyholder bob submitted" in r.stdout


def test_wrong_share_is_rejected_and_nothing_is_sent(sealed3: Sandbox) -> None:
    alice_index = codecs.decode(keyholder_share(sealed3, "alice")).index
    r = run_vaultops(sealed3, "unseal", "--share-stdin", "--keyholder", "alice",
                     stdin=foreign_share(alice_index) + "\n")
    assert r.returncode == 3
    assert "rejected, nothing sent" in r.stderr
    assert progress(sealed3) == {"node1": 0, "node2": 0, "node3": 0}
    assert journal_actions(sealed3)[-2]["action"] == "unseal.share-rejected"


def test_another_keyholders_share_is_rejected(sealed3: Sandbox) -> None:
    r = run_vaultops(sealed3, "unseal", "--share-stdin", "--keyholder", "bob",
                     stdin=keyholder_share(sealed3, "alice") + "\n")
    assert r.returncode == 3
    assert "belongs to keyholder alice, not to bob" in r.stderr
    assert progress(sealed3) == {"node1": 0, "node2": 0, "node3": 0}


def test_mnemonic_with_one_wrong_word_is_rejected_before_sending(sealed3: Sandbox) -> None:
    words = codecs.encode(codecs.decode(keyholder_share(sealed3, "carol")), "mnemonic").split()
    swapped = words.copy()
    swapped[10] = "academic" if words[10] != "academic" else "acid"
    typo = words.copy()
    typo[5] = words[5][:-1] + ("q" if words[5][-1] != "q" else "z")
    stdin = " ".join(swapped) + "\n" + " ".join(typo) + "\n"
    r = run_vaultops(sealed3, "unseal", "--share-stdin", "--keyholder", "carol", stdin=stdin)
    assert r.returncode == 2
    assert "checksum does not match" in r.stderr
    assert "word 6 is not a SLIP-39 word" in r.stderr
    assert progress(sealed3) == {"node1": 0, "node2": 0, "node3": 0}
    good = run_vaultops(sealed3, "unseal", "--share-stdin", "--keyholder", "carol",
                        stdin=" ".join(words) + "\n")
    assert good.returncode == 11  # accepted; two more shares needed
    assert progress(sealed3) == {"node1": 1, "node2": 1, "node3": 1}


def test_share_of_another_cluster_is_rejected(sealed3: Sandbox, pg_sealed: Sandbox) -> None:
    other = keyholder_share(pg_sealed, "alice")
    r = run_vaultops(sealed3, "unseal", "--share-stdin", stdin=other + "\n")
    assert r.returncode == 3
    assert "matches no keyholder in the manifest" in r.stderr
    assert progress(sealed3) == {"node1": 0, "node2": 0, "node3": 0}


def test_two_processes_at_once(sealed3: Sandbox) -> None:
    """Keyholders on two terminals: each sees the other's submissions; server progress is shared."""
    def start(name: str, *names: str) -> subprocess.Popen[str]:
        p = subprocess.Popen([*VAULTOPS, "--config", str(sealed3.config_path), "unseal",
                              "--share-stdin", "--wait", "--timeout", "60"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        procs[name] = p
        return p

    procs: dict[str, subprocess.Popen[str]] = {}
    before = len(journal_actions(sealed3))
    first = start("first")
    second = start("second")
    assert first.stdin and second.stdin
    first.stdin.write(f"alice: {keyholder_share(sealed3, 'alice')}\n")
    first.stdin.close()
    wait_for(lambda: progress(sealed3)["node1"] == 1, 30, "alice's share counted")
    second.stdin.write(f"bob: {keyholder_share(sealed3, 'bob')}\n"
                       f"carol: {keyholder_share(sealed3, 'carol')}\n")
    second.stdin.close()
    out1, err1 = finish(first)
    out2, err2 = finish(second)
    assert first.returncode == 0, err1
    assert second.returncode == 0, err2
    assert "keyholder bob submitted" in out1 and "(another terminal)" in out1
    assert all(not st.sealed for st in statuses(sealed3).values())
    sessions = {e["details"]["session"] for e in journal_actions(sealed3)[before:]
                if e["action"] == "unseal.share-submitted"}
    assert len(sessions) == 2


def finish(p: subprocess.Popen[str]) -> tuple[str, str]:
    assert p.stdout and p.stderr
    with p.stdout, p.stderr:
        out, err = p.stdout.read(), p.stderr.read()  # small outputs: no pipe can fill up
    p.wait(timeout=90)
    return out, err


def test_node_killed_and_restarted_mid_ceremony_gets_the_kept_shares(sealed3: Sandbox) -> None:
    """Issue 15: the shares this process checked are sent again to the restarted node."""
    cer = ceremony(sealed3)
    cer.start()
    cer.submit(keyholder_share(sealed3, "alice"), keyholder="alice")
    cer.submit(keyholder_share(sealed3, "bob"), keyholder="bob")
    drv = sealed3.drivers()["node2"]
    drv.kill()
    cer.refresh()  # node2 seen down
    drv.start()
    wait_for(lambda: cer.refresh().node("node2").progress == 2, 30, "node2 back, alice's and bob's shares re-sent")
    assert cer.snapshot().node("node2").contributors == ("alice", "bob")
    assert [e.message for e in cer.drain_events() if e.kind is EventKind.RESENT] == [
        "re-sent keyholder alice's share #1 to [node2] (held for this ceremony)",
        "re-sent keyholder bob's share #2 to [node2] (held for this ceremony)"]
    cer.submit(keyholder_share(sealed3, "carol"), keyholder="carol")
    assert cer.follow(timeout=30, until_unsealed=True).all_unsealed
    assert cer.snapshot().held == ()


def test_node_killed_and_restarted_mid_ceremony(sealed3: Sandbox) -> None:
    """Without kept shares (--resend-for 0) the restarted node names who must submit again."""
    cer = ceremony(sealed3, hold_for=0)
    cer.start()
    cer.submit(keyholder_share(sealed3, "alice"), keyholder="alice")
    cer.submit(keyholder_share(sealed3, "bob"), keyholder="bob")
    drv = sealed3.drivers()["node2"]
    drv.kill()
    cer.refresh()  # node2 seen down
    drv.start()
    wait_for(lambda: cer.refresh().node("node2").phase is NodePhase.SEALED, 30, "node2 back")
    snap = cer.snapshot()
    assert snap.node("node2").progress == 0
    assert snap.node("node2").must_resubmit == ("alice", "bob")
    events = cer.drain_events()
    lost = [e for e in events if e.kind is EventKind.NONCE_CHANGED and e.node == "node2"]
    assert lost and "it restarted" in lost[0].message and "alice, bob" in lost[0].message
    sub = cer.submit(keyholder_share(sealed3, "carol"), keyholder="carol")
    assert set(sub.sent_to) == {"node1", "node2", "node3"}
    snap = cer.follow(timeout=30)
    assert snap.node("node1").phase is NodePhase.UNSEALED
    assert snap.node("node2").phase is NodePhase.SEALED and snap.node("node2").progress == 1
    assert snap.node("node2").contributors == ("carol",)
    cer.submit(keyholder_share(sealed3, "alice"), keyholder="alice")
    cer.submit(keyholder_share(sealed3, "bob"), keyholder="bob")
    assert cer.follow(timeout=30).all_unsealed


def test_node_unreachable_throughout(sealed3: Sandbox) -> None:
    sealed3.drivers()["node3"].stop()
    lines = "".join(f"{n}: {keyholder_share(sealed3, n)}\n" for n in ("alice", "bob", "carol"))
    r = run_vaultops(sealed3, "unseal", "--share-stdin", stdin=lines)
    assert r.returncode == 12, r.stderr
    assert "node3 is unreachable" in r.stderr and "retrying while the other nodes proceed" in r.stderr
    st = statuses(sealed3)
    assert st["node3"] is None and not st["node1"].sealed and not st["node2"].sealed


def test_reset_discards_progress_everywhere(sealed3: Sandbox) -> None:
    r = run_vaultops(sealed3, "unseal", "--share-stdin",
                     stdin=f"dave: {keyholder_share(sealed3, 'dave')}\n")
    assert r.returncode == 11 and progress(sealed3) == {"node1": 1, "node2": 1, "node3": 1}
    refused = run_vaultops(sealed3, "unseal", "--reset")
    assert refused.returncode == 2 and "--yes" in refused.stderr
    r = run_vaultops(sealed3, "unseal", "--reset", "--yes")
    assert r.returncode == 0, r.stderr
    assert progress(sealed3) == {"node1": 0, "node2": 0, "node3": 0}
    assert journal_actions(sealed3)[-1]["action"] in ("unseal.reset", "unseal.nonce-changed")
    assert any(e["action"] == "unseal.reset" for e in journal_actions(sealed3)[-3:])


def test_without_manifest_it_works_with_a_warning(sealed3: Sandbox) -> None:
    lines = "".join(keyholder_share(sealed3, n) + "\n" for n in ("alice", "carol", "erin"))
    r = run_vaultops(sealed3, "unseal", "--share-stdin", "--no-manifest", stdin=lines)
    assert r.returncode == 0, r.stderr
    assert "shares cannot be checked" in r.stderr
    assert "NOT checked" in r.stdout


def test_malformed_lines_through_the_ceremony_send_nothing(sealed3: Sandbox) -> None:
    good = keyholder_share(sealed3, "alice")
    raw = codecs.decode(good).raw
    bad = [good[:-4], good + "AAAA", raw.hex()[:-2], raw.hex() + "00", "", "   ",
           good[:10] + " " + good[10:], "0x" + raw.hex(), good.replace("+", "-").replace("/", "_")
           if ("+" in good or "/" in good) else good[:-2] + "-_", good[:5] + "\x07" + good[6:]]
    r = run_vaultops(sealed3, "unseal", "--share-stdin", stdin="\n".join(bad) + "\n")
    assert r.returncode == 2
    assert r.stderr.count("rejected, nothing sent") == len(bad)
    assert progress(sealed3) == {"node1": 0, "node2": 0, "node3": 0}
    assert good not in r.stderr + r.stdout and raw.hex() not in r.stderr + r.stdout


def test_ceremony_runs_in_background_threads(sealed3: Sandbox) -> None:
    """The TUI refreshes in one thread while another submits: no lost updates."""
    cer = ceremony(sealed3)
    cer.start()
    stop = threading.Event()
    poller = threading.Thread(target=lambda: cer.follow(timeout=30, until_unsealed=True, stop=stop,
                                                        interval=0.05))
    poller.start()
    for name in ("bob", "dave", "erin"):
        cer.submit(keyholder_share(sealed3, name), keyholder=name)
    poller.join(40)
    stop.set()
    assert cer.snapshot().all_unsealed
    events = cer.drain_events()
    assert EventKind.CLUSTER_UNSEALED in [e.kind for e in events]
    # Every node announced unsealed, and never twice unless the server really re-sealed it in
    # between (a stale answer from the other thread must not replay a transition).
    announced: set[str] = set()
    for e in events:
        if e.kind is EventKind.NODE_RESEALED:
            announced.discard(e.node or "")
        elif e.kind is EventKind.NODE_UNSEALED:
            assert e.node not in announced, [f"{x.kind.value}: {x.message}" for x in events]
            announced.add(e.node or "")
    assert announced == {c.name for c in sealed3.clients()}
