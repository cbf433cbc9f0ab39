"""Client-side encryption of backups (backup.encryption): the age v1 format, vaultops.crypto.

    seal.py        the run's side: the configured recipients, and the tee that encrypts the
                   verified plaintext stream and hashes the ciphertext on its way to the sinks
    reveal.py      the read side: a stored object decrypted as it streams (constant memory),
                   checked against the manifest's ciphertext digest; the keyless check

What is where, for one encrypted backup `<name>.snap.age`:
  * the manifest's size/sha256 are the snapshot's (the plaintext the run verified before
    encrypting a byte of it); `encryption` holds the ciphertext's size/sha256, the format and
    the recipients' fingerprints (public: age1… or SHA256:…);
  * nothing unverified is published: the pipeline commits no upload before the verifier has
    passed the whole plaintext, exactly as for a plain backup.

Without an identity, `backup verify` proves only that the stored bytes are the bytes the run
published (digest and size against the manifest, and a well-formed age header addressed to
the recorded recipients) - not that anyone can still decrypt them, and not who wrote them:
age is not signed, so whoever can write both object and manifest to the sink can replace
them. With an identity (`--identity FILE`) it decrypts and verifies the snapshot inside.
"""
