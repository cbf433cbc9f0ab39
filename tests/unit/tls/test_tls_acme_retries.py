"""Retry policy of the ACME network layer: badNonce, rateLimited with Retry-After, give-up."""

from __future__ import annotations

import datetime as dt
import email.utils
from typing import Any

import pytest

from vaultops.services.tls.acme_client import MAX_RETRIES, _network_class, parse_retry_after, retry_delay


def test_retry_after_seconds_and_http_date() -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    later = email.utils.format_datetime(now + dt.timedelta(seconds=42), usegmt=True)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(later, now) == 42.0
    assert parse_retry_after("garbage") is None
    assert parse_retry_after(None) is None


def test_retry_delay_policy() -> None:
    assert retry_delay("badNonce", None, 1) == 0.0             # a fresh nonce is fetched anyway
    assert retry_delay("rateLimited", "30", 1) == 30.0          # Retry-After wins
    assert retry_delay("rateLimited", "99999", 1) == 300.0      # but is capped
    assert retry_delay("rateLimited", None, 3) == 20.0          # exponential without a header
    assert retry_delay("malformed", None, 1) is None            # not retryable
    assert retry_delay("badNonce", None, MAX_RETRIES) is None   # gives up eventually


class Resp:
    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers


def make_net(script: list[tuple[str, dict[str, str]] | str],
             monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[float], list[int]]:
    """A RetryingNetwork over a library `post` (public) that plays a script of errors, then succeeds."""
    import josepy as jose
    from acme import client, messages
    from cryptography.hazmat.primitives.asymmetric import ec

    net = _network_class()(jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1())), alg=jose.ES256)
    sleeps: list[float] = []
    net.sleep = sleeps.append
    steps = list(script)
    calls: list[int] = []

    def post(self: Any, *_a: Any, **_k: Any) -> str:
        calls.append(1)
        step = steps.pop(0)
        if step == "ok":
            return "response"
        code, headers = step  # type: ignore[misc]
        self.last_response = Resp(headers)
        raise messages.Error.with_code(code, detail="scripted")

    monkeypatch.setattr(client.ClientNetwork, "post", post)
    return net, sleeps, calls


def test_bad_nonce_retried_more_than_the_library_does(monkeypatch: pytest.MonkeyPatch) -> None:
    net, sleeps, _ = make_net([("badNonce", {}), ("badNonce", {}), ("badNonce", {}), "ok"], monkeypatch)
    assert net.post("https://ca/x", None) == "response"
    assert sleeps == []  # retried at once with a fresh nonce


def test_rate_limited_honours_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    net, sleeps, _ = make_net([("rateLimited", {"Retry-After": "12"}), "ok"], monkeypatch)
    assert net.post("https://ca/x", None) == "response"
    assert sleeps == [12.0]


def test_other_errors_are_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    from acme import messages

    net, sleeps, _ = make_net([("unauthorized", {}), "ok"], monkeypatch)
    with pytest.raises(messages.Error):
        net.post("https://ca/x", None)
    assert sleeps == []


def test_endless_bad_nonce_gives_up(monkeypatch: pytest.MonkeyPatch) -> None:
    from acme import messages

    net, sleeps, calls = make_net([("badNonce", {})] * (MAX_RETRIES + 2), monkeypatch)
    with pytest.raises(messages.Error):
        net.post("https://ca/x", None)
    assert len(calls) == MAX_RETRIES


def test_the_last_response_is_seen_through_the_public_session_hook() -> None:
    import josepy as jose
    from cryptography.hazmat.primitives.asymmetric import ec

    net = _network_class()(jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1())), alg=jose.ES256)
    answer = Resp({"Retry-After": "3"})
    for hook in net.session.hooks["response"]:
        hook(answer)
    assert net.last_response is answer


def test_no_private_acme_client_method_is_called() -> None:
    import inspect

    from vaultops.services.tls import acme_client

    source = inspect.getsource(acme_client)
    assert "_post_as_get" not in source and "_post_once" not in source and "_send_request" not in source
