"""Cryptographic formats vaultops writes and reads itself, on `cryptography`'s primitives.

    age.py        the age v1 file format (https://age-encryption.org/v1): header, STREAM payload,
                  push-mode encryptor/decryptor with constant memory
    agekeys.py    age recipients and identities: X25519 (`age1…`/`AGE-SECRET-KEY-1…`) and the
                  ssh-ed25519 / ssh-rsa types of the reference implementation
    stanza.py     what both share: stanzas, canonical unpadded base64, HKDF, the errors

Why not a binding (pyrage): it streams with constant memory only through `encrypt_io(reader,
writer)`, which pulls from Python in 8 KiB reads - 2.5x slower than one AEAD call per 64 KiB
chunk here, and a pull model the backup pipeline (push) would need a pump thread for. The
format is proven against the C2SP/CCTV age test vectors (tests/unit/crypto/testkit) and
against the reference `age` binary (tests/integration/crypto).
"""
