"""Hub tests use the in-memory keyring automatically."""

from __future__ import annotations

import pytest

from tests.hub.fixtures import fake_hub, memory_keyring  # noqa: F401


@pytest.fixture(autouse=True)
def _keyring(memory_keyring):  # noqa: F811
    return memory_keyring
