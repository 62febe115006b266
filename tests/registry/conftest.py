"""Fixtures of the registry tests (helpers: ``registry_harness``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from registry_harness import HELLO_IDL, Running, running_registry

import tarsus.idl
from tarsus.store import Store


@pytest.fixture
async def reg(store: Store) -> AsyncIterator[Running]:
    """A registry serving on ephemeral ports over the ``store`` fixture (both engines)."""
    async with running_registry(store) as running:
        yield running


@pytest.fixture(scope="session")
def hello_idl(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path: Path = tmp_path_factory.mktemp("hello") / "Hello.tars"
    path.write_text(HELLO_IDL)
    return tarsus.idl.load(path).Test
