"""An existing store file that is empty or not a database is refused, and left as it was;
asked to (``create=True``), an empty file becomes a new store. A new path is created as ever."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tarsus.store import ServerSpec, StoreDamaged, StoreError, open_store


async def test_a_zero_byte_store_is_refused_and_left_alone(tmp_path: Path) -> None:
    db = tmp_path / "tarsus.db"
    db.write_bytes(b"")
    with pytest.raises(StoreDamaged, match=r"exists but is empty \(0 bytes\).*--create") as info:
        await open_store(data_dir=tmp_path)
    assert str(db) in str(info.value)
    assert isinstance(info.value, StoreError)
    assert db.read_bytes() == b""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tarsus.db"], "no -wal/-shm made"


async def test_a_file_that_is_not_sqlite_is_refused_and_left_alone(tmp_path: Path) -> None:
    db = tmp_path / "tarsus.db"
    db.write_bytes(b"PK\x03\x04 a zip, not a store" * 100)
    before = db.read_bytes()
    with pytest.raises(StoreDamaged, match="not a SQLite database file"):
        await open_store(f"sqlite:///{db}")
    assert db.read_bytes() == before


async def test_an_empty_file_becomes_a_store_when_asked(tmp_path: Path) -> None:
    db = tmp_path / "tarsus.db"
    db.write_bytes(b"")
    async with await open_store(f"sqlite:///{db}", create=True) as store:
        assert await store.templates.get("tars.default") is not None


async def test_a_sqlite_file_without_tables_is_refused_unless_asked(tmp_path: Path) -> None:
    db = tmp_path / "tarsus.db"
    # a valid SQLite file with no table: what is left of a store emptied by a tool
    raw = sqlite3.connect(db)
    raw.execute("CREATE TABLE t (x)")
    raw.execute("DROP TABLE t")
    raw.commit()
    raw.close()
    with pytest.raises(StoreDamaged, match="has no tables"):
        await open_store(f"sqlite:///{db}")
    async with await open_store(f"sqlite:///{db}", create=True) as store:
        assert await store.servers.list() == []


async def test_a_sound_store_reopens_with_its_data(tmp_path: Path) -> None:
    async with await open_store(data_dir=tmp_path) as store:
        await store.servers.deploy(ServerSpec("Demo", "Hello", "n1"), [])
    async with await open_store(data_dir=tmp_path) as store:
        assert [r.server_name for r in await store.servers.list()] == ["Hello"]


async def test_a_new_path_is_created(tmp_path: Path) -> None:
    async with await open_store(f"sqlite:///{tmp_path / 'a' / 'b' / 'new.db'}") as store:
        assert await store.templates.get("tars.tarspython.default") is not None
