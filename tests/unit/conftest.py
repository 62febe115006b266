from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import tarsus.idl

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def codec_idl() -> Any:
    """The IDL modules of codec_fixtures/Codec.tars (``codec_idl.Codec.AllTypes``...)."""
    return tarsus.idl.load(HERE / "codec_fixtures" / "Codec.tars").Codec
