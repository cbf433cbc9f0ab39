"""Hostile names: every kind refuses option-looking, path-escaping and control-character values."""

from __future__ import annotations

import pytest

from vaultops.errors import ConfigError, UsageError
from vaultops.names import Kind, check_name, is_name, shown

HOSTILE = ["", "-oProxyCommand=touch /tmp/x", "..", "../../victim", "/etc", "a/../b", "a\0b", "a\nb",
           "a\x1b[2Jb", "a b", "a;rm -rf /", "$(id)", "`id`", "a|b", "a'b", 'a"b', "a&b", "a>b", "*"]


@pytest.mark.parametrize("kind", list(Kind))
@pytest.mark.parametrize("value", HOSTILE)
def test_every_kind_refuses_hostile_values(kind: Kind, value: str) -> None:
    if kind is Kind.BINARY and value == "/etc":
        pytest.skip("an absolute path is a valid binary")
    with pytest.raises(UsageError) as err:
        check_name(kind, value)
    assert "\n" not in str(err.value) and "\x1b" not in str(err.value) and "\0" not in str(err.value)


@pytest.mark.parametrize(("kind", "value"), [
    (Kind.SANDBOX, "tour"), (Kind.SANDBOX, "raft3_a-b"), (Kind.NODE, "vault-1.example.com"),
    (Kind.HOST, "ops@vault-1"), (Kind.HOST, "10.0.0.1"), (Kind.HOST, "fe80::1%eth0"),
    (Kind.SERVICE, "vault.service"), (Kind.SERVICE, "openbao@main"), (Kind.BINARY, "/usr/bin/bao"),
    (Kind.BINARY, "vault"), (Kind.PACKAGE, "openbao"), (Kind.ACCOUNT, "vault"), (Kind.ACCOUNT, "995"),
    (Kind.BACKUP, "prod-20250101T000000.000Z.snap"), (Kind.OBJECT_KEY, "prefix/prod-1.snap"),
    (Kind.KEYHOLDER, "alice"), (Kind.CLUSTER, "sandbox-tour"),
])
def test_plain_names_pass(kind: Kind, value: str) -> None:
    assert check_name(kind, value) == value
    assert is_name(kind, value)


def test_single_component_kinds_refuse_slashes() -> None:
    for kind in (Kind.SANDBOX, Kind.NODE, Kind.HOST, Kind.SERVICE, Kind.PACKAGE, Kind.BACKUP):
        assert not is_name(kind, "a/b")


def test_error_class_and_where_are_the_callers() -> None:
    with pytest.raises(ConfigError, match=r"^vaultops.yaml nodes\[0\].name: node name"):
        check_name("node", "-x", where="vaultops.yaml nodes[0].name", error=ConfigError)
    with pytest.raises(UsageError, match="must be a string"):
        check_name("node", 5)


def test_shown_escapes_and_cuts() -> None:
    assert shown("a\x1b[2J") == "'a\\x1b[2J'"
    assert shown("x" * 100).endswith("…")
