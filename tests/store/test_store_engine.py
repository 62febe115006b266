"""Opening stores: URLs, the default SQLite file, connection settings, and the errors for a
database that cannot be reached."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tarsus.store import (
    InvalidInput,
    Store,
    StoreError,
    StoreUnavailable,
    normalize_url,
    open_store,
)


async def test_unreachable_mysql_is_store_unavailable_without_the_password() -> None:
    url = "mysql://tars:S3cretPw@127.0.0.1:1/db_tars"
    with pytest.raises(StoreUnavailable) as info:
        await open_store(url)
    message = str(info.value)
    assert "S3cretPw" not in message
    assert "mysql+asyncmy://tars:***@127.0.0.1:1/db_tars" in message
    assert "Can't connect" in message or "refused" in message.lower()
    assert isinstance(info.value, StoreError)


async def test_wrong_mysql_password_is_store_unavailable(store_url: str) -> None:
    if not store_url.startswith("mysql"):
        pytest.skip("MySQL only")
    bad = store_url.replace("root@", "nosuchuser:Wr0ngPw@")
    with pytest.raises(StoreUnavailable, match="Access denied") as info:
        await open_store(bad)
    assert "Wr0ngPw" not in str(info.value)


async def test_an_unopenable_sqlite_file_is_store_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreUnavailable, match="file"):
        await open_store(f"sqlite:///{blocker}/sub/tarsus.db")


async def test_no_url_means_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with await open_store(data_dir=data) as store:
        assert store.dialect == "sqlite"
        assert (data / "tarsus.db").is_file()
        assert store.url.endswith(str(data / "tarsus.db"))


async def test_sqlite_connections_use_wal_and_a_busy_timeout(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'x.db'}")
    async with store, store.connect() as conn:
        assert await conn.scalar(text("PRAGMA journal_mode")) == "wal"
        assert await conn.scalar(text("PRAGMA busy_timeout")) == 5000
        assert await conn.scalar(text("PRAGMA synchronous")) == 1  # NORMAL


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///a/b.db", "sqlite+aiosqlite:///a/b.db"),
        ("sqlite+aiosqlite:////abs/b.db", "sqlite+aiosqlite:////abs/b.db"),
        ("mysql://u:p@h:3306/db_tars", "mysql+asyncmy://u:***@h:3306/db_tars?charset=utf8mb4"),
        ("mysql+asyncmy://u@h/db", "mysql+asyncmy://u@h/db?charset=utf8mb4"),
        ("mariadb://u:p@h:3307/db", "mysql+asyncmy://u:***@h:3307/db?charset=utf8mb4"),
        ("mysql+pymysql://u@h/db?charset=utf8", "mysql+asyncmy://u@h/db?charset=utf8"),
    ],
)
def test_urls_map_to_async_drivers(given: str, expected: str) -> None:
    assert normalize_url(given).render_as_string(hide_password=True) == expected


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("postgresql://u:pw@h/db", r"unsupported scheme 'postgresql'"),
        ("mysql://u:pw@h:3306", r"names no database"),
        ("mysql://u:pw@h/db-x", r"database name 'db-x'"),
        ("not a url", r"cannot be parsed"),
    ],
)
def test_bad_urls_are_invalid_input_without_the_password(given: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as info:
        normalize_url(given)
    assert ":pw@" not in str(info.value)


async def test_store_hides_the_password() -> None:
    engine = create_async_engine(normalize_url("mysql://tars:S3cretPw@db.example:3306/db_tars"))
    store = Store(engine)
    try:
        assert "S3cretPw" not in repr(store) and "S3cretPw" not in store.url
        assert store.url == "mysql+asyncmy://tars:***@db.example:3306/db_tars?charset=utf8mb4"
        assert store.dialect == "mysql"
    finally:
        await store.close()


async def test_clock_gives_whole_seconds_local_time(store: Store) -> None:
    assert store.clock().microsecond == 0 and store.clock().tzinfo is None


async def test_default_clock_is_local_now(tmp_path: Path) -> None:
    async with await open_store(data_dir=tmp_path) as store:
        assert abs((store.clock() - datetime.now()).total_seconds()) < 5


async def test_writes_that_fail_leave_nothing_behind(store: Store) -> None:
    with pytest.raises(RuntimeError):
        async with store.begin() as conn:
            await conn.execute(text("DELETE FROM t_profile_template"))
            raise RuntimeError("boom")
    assert await store.templates.get("tars.default") is not None


async def test_a_nested_write_transaction_is_an_error_not_a_hang(store: Store) -> None:
    with pytest.raises(StoreError, match="inside another one"):
        async with store.begin():
            await store.templates.upsert("t.nested", "", "<tars>\n</tars>\n")
    assert await store.templates.get("t.nested") is None
    await store.templates.upsert("t.nested", "", "<tars>\n</tars>\n")  # the lock was released
