"""The key ceremonies: unseal, init, rekey and root-token generation, and what they share.

    shares.py, share_words.py   share codecs (base64, hex, SLIP-39 mnemonics)
    manifest.py                 the keyholder manifest: share indexes and salted verifiers
    keyholders.py               roster, drills, readiness, PGP hand-out
    unseal.py                   the unseal ceremony (fan-out to every sealed node, live progress)
    tracking.py, types.py, view.py, journal.py   node tracking, events and snapshots, rendering helpers,
                                the ceremony's journal records
    init.py, rekey.py, root.py  init, rekey/rotate and generate-root
"""
