"""``tarsus web passwd``: the way back in when the admin password is forgotten (upstream:
blank a column in the database, Tars#588)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tarsus.ops.passwords import verify
from tarsus.ops.platform import Platform
from tarsus.ops.users import ensure_admin
from tarsus.store import open_store


async def test_passwd_sets_a_forgotten_admin_password_and_audits_it(tmp_path: Path) -> None:
    async with await open_store(data_dir=tmp_path) as store:
        generated = await ensure_admin(Platform(store))
        assert generated is not None and await ensure_admin(Platform(store)) is None
    new = tmp_path / "new"
    new.write_text("a brand new password\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tarsus",
            "web",
            "passwd",
            "admin",
            "--data-dir",
            str(tmp_path),
            "--password-file",
            str(new),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    short = tmp_path / "short"
    short.write_text("short\n")
    refused = subprocess.run(
        [
            sys.executable,
            "-m",
            "tarsus",
            "web",
            "passwd",
            "admin",
            "--data-dir",
            str(tmp_path),
            "--password-file",
            str(short),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 1 and "at least 10" in refused.stderr
    async with await open_store(data_dir=tmp_path) as store:
        row = await store.users.get("admin")
        assert row is not None and await verify("a brand new password", row.password)
        assert not await verify(generated, row.password)
        rows, _ = await store.audit.page(action="user.password_reset")
        assert [(r.target, r.via) for r in rows] == [("admin", "cli")]
