"""Seeded randomness for the secrets tests generate (shares above all), so a failure can be replayed.

The session seed comes from $VAULTOPS_TEST_SEED, or is drawn once and put there (pytest-xdist workers
inherit it); tests/conftest.py prints it in the pytest header and reseeds before every test with the
seed and the test's id, so a test gets the same shares whatever ran before it or on which worker:

    VAULTOPS_TEST_SEED=1234 pytest tests/unit/tui/test_unseal_tui.py     # the same shares as the failed run

Only test material comes from here: production secrets come from `secrets`/`os.urandom`.
"""

from __future__ import annotations

import os
import random

ENV = "VAULTOPS_TEST_SEED"
_rng = random.Random()


def session_seed() -> int:
    """The run's seed: $VAULTOPS_TEST_SEED, else a fresh one, exported for child processes and workers."""
    value = os.environ.get(ENV, "").strip()
    if not value.isdigit():
        value = str(random.SystemRandom().randrange(1, 2**31))
        os.environ[ENV] = value
    return int(value)


def reseed(label: str) -> None:
    """Start the stream again from the session seed and *label* (a test's id)."""
    _rng.seed(f"{session_seed()}/{label}")


def rng() -> random.Random:
    return _rng


def randbytes(n: int) -> bytes:
    return _rng.randbytes(n)


__all__ = ["ENV", "randbytes", "reseed", "rng", "session_seed"]
