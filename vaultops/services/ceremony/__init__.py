"""The key ceremonies: unseal, init, rekey and root-token generation, and what they share.

    shares.py, share_words.py   share codecs (base64, hex, SLIP-39 mnemonics)
    manifest.py                 the keyholder manifest: share indexes and salted verifiers
    keyholders.py               roster, drills, readiness, PGP hand-out
    submit.py                   the one way shares reach a node (ceremony, upgrade, sandbox, drills)
    unseal.py                   UnsealCeremony: every sealed node at once, live progress
    tracking.py, types.py, view.py, journal.py   its NodeTracker, events and snapshots, rendering
                                helpers, the ceremony's journal records
    init.py                     `vaultops init`
    base.py                     KeyCeremony: what rekey and root share (active node, manifest
                                check, journal, cancel); opened with XCeremony.open(clients, ...)
    rekey.py, pending.py        RekeyCeremony, and the plan it keeps beside the manifest
    root.py                     RootCeremony: generate-root (OTP or PGP)
"""
