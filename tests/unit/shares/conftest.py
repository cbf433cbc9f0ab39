"""Fixtures for the share codec, manifest and CLI tests."""

from __future__ import annotations

import pytest
from shares_helpers import make_raw


@pytest.fixture
def raw() -> bytes:
    return make_raw()
