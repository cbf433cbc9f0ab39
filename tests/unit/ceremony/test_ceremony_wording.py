"""Share messages for people: keyholder numbers, not x-coordinates (those only with --debug); typos named."""

from __future__ import annotations

from ceremony_fakes import make_manifest, make_shares

from vaultops.services.ceremony.manifest import CheckResult, CheckStatus
from vaultops.services.ceremony.share_words import CHECKSUM_FAILED
from vaultops.services.ceremony.wording import Wording, format_refusal


def test_share_labels_are_keyholder_numbers() -> None:
    raws = make_shares()
    m = make_manifest(raws)
    assert [Wording(m).share(r[-1]) for r in raws] == [f"share #{i}" for i in range(1, 6)]
    assert Wording(m, debug=True).share(raws[2][-1]) == f"share #3 (x={raws[2][-1]})"
    assert Wording(m).share(99) == "a share" and Wording(None).share(raws[0][-1]) == "a share"
    assert "(x=99)" in Wording(m, debug=True).unknown(99) and "x=" not in Wording(m).unknown(99)


def test_refusals_say_whose_share_or_that_it_is_a_typo() -> None:
    raws = make_shares()
    m, w = make_manifest(raws), Wording(make_manifest(raws))
    alice, bob = raws[0][-1], raws[1][-1]
    assert w.refusal(CheckResult(CheckStatus.OTHER_KEYHOLDER, "alice", bob, owner="bob", verified=True)) == (
        "share #2 belongs to keyholder bob, not to alice")
    assert w.refusal(CheckResult(CheckStatus.NO_MATCH, "alice", alice)).startswith(
        "this is probably a typo in alice's share: it carries alice's number")
    assert w.refusal(CheckResult(CheckStatus.NO_MATCH, "alice", 99)).startswith(
        "this is probably a typo in alice's share: it matches no keyholder")
    assert "no verifier" in w.refusal(CheckResult(CheckStatus.NO_VERIFIER, "alice", alice))
    assert m.keyholders[0].name == "alice"


def test_a_failed_checksum_is_a_typo_of_the_keyholder_typing() -> None:
    assert format_refusal(CHECKSUM_FAILED, "carol").endswith("this is probably a typo in carol's share: "
                                                             "compare every word with the written copy")
    assert format_refusal(CHECKSUM_FAILED, None) == CHECKSUM_FAILED
    assert format_refusal("share is 12 bytes", "carol") == "share is 12 bytes"
