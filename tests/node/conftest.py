"""Fixtures for tests/node: defined in node_support.py (importable by a unique name)."""

from node_support import *  # noqa: F403
