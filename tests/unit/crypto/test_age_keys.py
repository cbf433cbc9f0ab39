"""age recipients and identities: Bech32, X25519, ssh-ed25519, ssh-rsa; streaming edge cases."""

from __future__ import annotations

import hashlib
import os
import random

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from vaultops.crypto import age
from vaultops.crypto.agekeys import (X25519Identity, bech32_decode, bech32_encode, parse_identities,
                                     parse_recipient)
from vaultops.crypto.stanza import AgeError, HeaderMacError, KeyFormatError, NoIdentityMatch, PayloadError

SPEC_IDENTITY = "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX"
SPEC_RECIPIENT = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj"


def ssh_pair(kind: str, *, password: bytes | None = None) -> tuple[str, bytes]:
    key = ed25519.Ed25519PrivateKey.generate() if kind == "ed25519" else rsa.generate_private_key(65537, 2048)
    enc = (serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption())
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, enc)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return public.decode() + " someone@host", private


def test_the_spec_example_identity_has_the_spec_example_recipient():
    ident = parse_identities(SPEC_IDENTITY.encode())[0]
    assert ident.recipient.text == SPEC_RECIPIENT
    assert parse_recipient(SPEC_RECIPIENT).fingerprint == SPEC_RECIPIENT


def test_bech32_round_trip_and_refusals():
    data = os.urandom(32)
    text = bech32_encode("age", data)
    assert bech32_decode(text) == ("age", data)
    assert bech32_decode(text.upper()) == ("age", data)
    assert bech32_decode(text[:-1] + ("q" if text[-1] != "q" else "p")) is None   # checksum
    assert bech32_decode(text[:5] + text[5:].upper()) is None                     # mixed case


@pytest.mark.parametrize("bad", ["age1qqqq", "ssh-dss AAAAB3NzaC1kc3MAAACBAP", "hello", SPEC_RECIPIENT.upper(),
                                 "ssh-ed25519 AAAAnotbase64!"])
def test_bad_recipients_are_refused_in_one_line(bad):
    with pytest.raises(KeyFormatError) as exc:
        parse_recipient(bad)
    assert "\n" not in str(exc.value)


def test_a_small_rsa_key_is_refused():
    pub = rsa.generate_private_key(65537, 1024).public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    with pytest.raises(KeyFormatError, match="1024 bits"):
        parse_recipient(pub)


def test_identity_file_errors_never_quote_the_identity():
    secret = X25519Identity.generate().to_text()
    damaged = ("# my key\n" + secret[:-1] + "x\n").encode()
    with pytest.raises(KeyFormatError) as exc:
        parse_identities(damaged)
    assert "line 2" in str(exc.value) and secret[15:40] not in str(exc.value)
    with pytest.raises(KeyFormatError, match="no identity"):
        parse_identities(b"# only a comment\n\n")


@pytest.mark.parametrize("kind", ["ed25519", "rsa"])
def test_ssh_recipient_decrypts_with_the_matching_private_key_only(kind):
    public, private = ssh_pair(kind)
    other_public, other_private = ssh_pair(kind)
    rec = parse_recipient(public)
    assert rec.fingerprint.startswith("SHA256:") and rec.type == f"ssh-{kind}"
    data = os.urandom(200_000)
    ct = age.encrypt(data, [rec])
    assert age.decrypt(ct, parse_identities(private)) == data
    with pytest.raises(NoIdentityMatch):
        age.decrypt(ct, parse_identities(other_private))


def test_a_passphrase_protected_ssh_key_needs_its_passphrase():
    public, private = ssh_pair("ed25519", password=b"correct horse")
    ct = age.encrypt(b"share", [parse_recipient(public)])
    with pytest.raises(KeyFormatError, match="passphrase"):
        parse_identities(private)
    with pytest.raises(KeyFormatError, match="wrong passphrase"):
        parse_identities(private, passphrase=b"wrong")
    assert age.decrypt(ct, parse_identities(private, passphrase=b"correct horse")) == b"share"


def test_many_recipients_any_one_opens():
    idents = [X25519Identity.generate() for _ in range(3)]
    public, private = ssh_pair("ed25519")
    ct = age.encrypt(b"x" * 70_000, [i.recipient for i in idents] + [parse_recipient(public)])
    for ident in idents:
        assert age.decrypt(ct, [ident]) == b"x" * 70_000
    assert age.decrypt(ct, parse_identities(private)) == b"x" * 70_000


@pytest.mark.parametrize("size", [0, 1, age.CHUNK - 1, age.CHUNK, age.CHUNK + 1, 3 * age.CHUNK, 1_000_003])
def test_streaming_any_split_round_trips_and_sizes_are_predicted(size):
    rng = random.Random(size)
    data = rng.randbytes(size)
    ident = X25519Identity.generate()
    enc = age.Encryptor([ident.recipient])
    out, pos = bytearray(), 0
    while pos < size:
        step = rng.choice([1, 17, 4096, age.CHUNK, 300_000])
        out += enc.update(data[pos:pos + step])
        pos += step
    out += enc.finish()
    header = age.read_header(out)
    assert len(out) == header.size + age.payload_size(size)
    dec = age.Decryptor([ident])
    plain = bytearray()
    for i in range(0, len(out), 65_537):
        plain += dec.update(out[i:i + 65_537])
    plain += dec.finish()
    assert hashlib.sha256(plain).digest() == hashlib.sha256(data).digest()


def test_truncation_flip_and_swapped_header_are_refused():
    ident = X25519Identity.generate()
    data = os.urandom(5 * age.CHUNK)
    ct = age.encrypt(data, [ident.recipient])
    other = age.encrypt(data, [ident.recipient])
    header = age.read_header(ct)
    with pytest.raises(PayloadError):          # cut at a chunk boundary: no final chunk
        age.decrypt(ct[:header.size + age.NONCE + 2 * (age.CHUNK + age.TAG)], [ident])
    flipped = bytearray(ct)
    flipped[-100] ^= 1
    with pytest.raises(PayloadError):
        age.decrypt(bytes(flipped), [ident])
    theirs = age.read_header(other)            # another file's whole header: its own MAC holds, the payload not
    with pytest.raises(PayloadError):
        age.decrypt(other[:theirs.size] + ct[header.size:], [ident])
    mac_line = ct[len(header.signed) - 3:header.size]   # another file's wrapped key under this MAC
    with pytest.raises(HeaderMacError):
        age.decrypt(theirs.signed[:-3] + mac_line + ct[header.size:], [ident])


@pytest.mark.parametrize("size", [0, 10, 47, 48, 49, 5000])
def test_armor_round_trip_and_strictness(size):
    ident = X25519Identity.generate()
    ct = age.encrypt(os.urandom(size), [ident.recipient])
    text = age.armor(ct)
    assert text.startswith(age.ARMOR_BEGIN + "\n") and text.endswith(age.ARMOR_END + "\n")
    assert age.dearmor("\n  " + text.replace("\n", "\r\n") + "\n") == ct
    with pytest.raises(AgeError):
        age.dearmor(text.replace(age.ARMOR_BEGIN, "-----BEGIN PGP MESSAGE-----"))
    with pytest.raises(AgeError):
        age.dearmor("garbage " + text)
