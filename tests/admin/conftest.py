"""Fixtures for tests/admin: defined in admin_support.py (importable by a unique name)."""

from admin_support import *  # noqa: F403
