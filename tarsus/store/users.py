"""The console's users, their grants, API tokens and login sessions (Tarsus's own tables).

Rows only: what a role means, how a password is hashed and who may change what are decided by
the service layer (:mod:`tarsus.ops.users`, :mod:`tarsus.ops.sessions`). Secrets never reach
this module in the clear: passwords arrive hashed, tokens and session ids as SHA-256 hex.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from tarsus.store.errors import Conflict, InvalidInput, NotFound
from tarsus.store.schema import t_web_grant, t_web_session, t_web_token, t_web_user

if TYPE_CHECKING:
    from tarsus.store.engine import Store

__all__ = ["GrantRow", "SessionRow", "TokenRow", "UserRow", "Users"]


@dataclass(frozen=True, slots=True)
class UserRow:
    uid: str
    password: str
    enabled: bool
    create_time: datetime | None
    password_time: datetime | None
    lastuser: str


@dataclass(frozen=True, slots=True)
class GrantRow:
    id: int
    uid: str
    role: str
    flag: str
    posttime: datetime | None
    lastuser: str


@dataclass(frozen=True, slots=True)
class TokenRow:
    id: int
    uid: str
    name: str
    token_hash: str
    scopes: str
    flag: str
    expire_time: datetime | None
    enabled: bool
    last_used: datetime | None
    create_time: datetime | None


@dataclass(frozen=True, slots=True)
class SessionRow:
    uid: str
    csrf: str
    create_time: datetime | None
    expire_time: datetime


def _user(r: Any) -> UserRow:
    return UserRow(
        r.uid, r.password, bool(r.enabled), r.create_time, r.password_time, r.lastuser or ""
    )


def _grant(r: Any) -> GrantRow:
    return GrantRow(r.id, r.uid, r.role, r.flag, r.posttime, r.lastuser or "")


def _token(r: Any) -> TokenRow:
    return TokenRow(
        r.id,
        r.uid,
        r.name,
        r.token_hash,
        r.scopes,
        r.flag,
        r.expire_time,
        bool(r.enabled),
        r.last_used,
        r.create_time,
    )


def _like(q: str) -> str:
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _check(field: str, value: str, limit: int) -> None:
    if len(value) > limit:
        raise InvalidInput(f"{field} is {len(value)} characters; at most {limit}")


class Users:
    """``store.users``."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # -- users ------------------------------------------------------------------------------

    async def create(self, uid: str, password_hash: str, *, by: str = "") -> None:
        _check("uid", uid, 64)
        now = self._store.clock()
        try:
            async with self._store.begin() as conn:
                await conn.execute(
                    insert(t_web_user).values(
                        uid=uid,
                        password=password_hash,
                        enabled=1,
                        create_time=now,
                        password_time=now,
                        lastuser=by[:64],
                    )
                )
        except IntegrityError:
            raise Conflict(f"user {uid} exists already") from None

    async def get(self, uid: str) -> UserRow | None:
        async with self._store.connect() as conn:
            row = (await conn.execute(select(t_web_user).where(t_web_user.c.uid == uid))).first()
        return None if row is None else _user(row)

    async def count(self) -> int:
        async with self._store.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(t_web_user)) or 0)

    async def page(self, q: str, offset: int, limit: int) -> tuple[list[UserRow], int]:
        where = t_web_user.c.uid.like(_like(q), escape="\\") if q else None
        query = select(t_web_user).order_by(t_web_user.c.uid).offset(offset).limit(limit)
        total = select(func.count()).select_from(t_web_user)
        if where is not None:
            query, total = query.where(where), total.where(where)
        async with self._store.connect() as conn:
            rows = [_user(r) for r in await conn.execute(query)]
            return rows, int(await conn.scalar(total) or 0)

    async def set_password(self, uid: str, password_hash: str, *, by: str = "") -> None:
        """New hash; every session of the user ends (a stolen cookie stops working)."""
        async with self._store.begin() as conn:
            done = await conn.execute(
                update(t_web_user)
                .where(t_web_user.c.uid == uid)
                .values(password=password_hash, password_time=self._store.clock(), lastuser=by)
            )
            if done.rowcount == 0:
                raise NotFound(f"no user {uid}")
            await conn.execute(delete(t_web_session).where(t_web_session.c.uid == uid))

    async def set_enabled(self, uid: str, enabled: bool, *, by: str = "") -> None:
        async with self._store.begin() as conn:
            done = await conn.execute(
                update(t_web_user)
                .where(t_web_user.c.uid == uid)
                .values(enabled=int(enabled), lastuser=by)
            )
            if done.rowcount == 0:
                raise NotFound(f"no user {uid}")
            if not enabled:
                await conn.execute(delete(t_web_session).where(t_web_session.c.uid == uid))

    async def delete(self, uid: str) -> None:
        """The user, their grants, tokens and sessions."""
        async with self._store.begin() as conn:
            done = await conn.execute(delete(t_web_user).where(t_web_user.c.uid == uid))
            if done.rowcount == 0:
                raise NotFound(f"no user {uid}")
            for table in (t_web_grant, t_web_token, t_web_session):
                await conn.execute(delete(table).where(table.c.uid == uid))

    # -- grants -----------------------------------------------------------------------------

    async def grants_of(self, uid: str) -> list[GrantRow]:
        async with self._store.connect() as conn:
            rows = await conn.execute(
                select(t_web_grant).where(t_web_grant.c.uid == uid).order_by(t_web_grant.c.id)
            )
            return [_grant(r) for r in rows]

    async def grant_page(self, q: str, offset: int, limit: int) -> tuple[list[GrantRow], int]:
        where = None
        if q:
            pattern = _like(q)
            where = or_(
                t_web_grant.c.uid.like(pattern, escape="\\"),
                t_web_grant.c.flag.like(pattern, escape="\\"),
                t_web_grant.c.role.like(pattern, escape="\\"),
            )
        query = (
            select(t_web_grant)
            .order_by(t_web_grant.c.uid, t_web_grant.c.flag, t_web_grant.c.role)
            .offset(offset)
            .limit(limit)
        )
        total = select(func.count()).select_from(t_web_grant)
        if where is not None:
            query, total = query.where(where), total.where(where)
        async with self._store.connect() as conn:
            rows = [_grant(r) for r in await conn.execute(query)]
            return rows, int(await conn.scalar(total) or 0)

    async def get_grant(self, grant_id: int) -> GrantRow | None:
        async with self._store.connect() as conn:
            row = (
                await conn.execute(select(t_web_grant).where(t_web_grant.c.id == grant_id))
            ).first()
        return None if row is None else _grant(row)

    async def add_grant(self, uid: str, role: str, flag: str, *, by: str = "") -> int:
        _check("flag", flag, 256)
        try:
            async with self._store.begin() as conn:
                if (
                    await conn.scalar(select(t_web_user.c.id).where(t_web_user.c.uid == uid))
                ) is None:
                    raise NotFound(f"no user {uid}")
                done = await conn.execute(
                    insert(t_web_grant).values(
                        uid=uid, role=role, flag=flag, posttime=self._store.clock(), lastuser=by
                    )
                )
                return int(done.inserted_primary_key[0])  # type: ignore[index]
        except IntegrityError:
            raise Conflict(f"{uid} has {role} on {flag} already") from None

    async def delete_grant(self, grant_id: int) -> None:
        async with self._store.begin() as conn:
            done = await conn.execute(delete(t_web_grant).where(t_web_grant.c.id == grant_id))
        if done.rowcount == 0:
            raise NotFound(f"no grant {grant_id}")

    # -- tokens -----------------------------------------------------------------------------

    async def add_token(
        self,
        uid: str,
        name: str,
        token_hash: str,
        scopes: str,
        flag: str,
        expire_time: datetime | None,
    ) -> int:
        _check("name", name, 64)
        _check("scopes", scopes, 255)
        _check("flag", flag, 256)
        async with self._store.begin() as conn:
            done = await conn.execute(
                insert(t_web_token).values(
                    uid=uid,
                    name=name,
                    token_hash=token_hash,
                    scopes=scopes,
                    flag=flag,
                    expire_time=expire_time,
                    enabled=1,
                    create_time=self._store.clock(),
                )
            )
            return int(done.inserted_primary_key[0])  # type: ignore[index]

    async def token_by_hash(self, token_hash: str) -> TokenRow | None:
        async with self._store.connect() as conn:
            row = (
                await conn.execute(
                    select(t_web_token).where(t_web_token.c.token_hash == token_hash)
                )
            ).first()
        return None if row is None else _token(row)

    async def get_token(self, token_id: int) -> TokenRow | None:
        async with self._store.connect() as conn:
            row = (
                await conn.execute(select(t_web_token).where(t_web_token.c.id == token_id))
            ).first()
        return None if row is None else _token(row)

    async def token_page(
        self, uid: str | None, q: str, offset: int, limit: int
    ) -> tuple[list[TokenRow], int]:
        """Tokens (of ``uid``, or everyone's), newest first."""
        conditions = []
        if uid is not None:
            conditions.append(t_web_token.c.uid == uid)
        if q:
            pattern = _like(q)
            conditions.append(
                or_(
                    t_web_token.c.uid.like(pattern, escape="\\"),
                    t_web_token.c.name.like(pattern, escape="\\"),
                )
            )
        query = select(t_web_token).order_by(t_web_token.c.id.desc()).offset(offset).limit(limit)
        total = select(func.count()).select_from(t_web_token)
        for c in conditions:
            query, total = query.where(c), total.where(c)
        async with self._store.connect() as conn:
            rows = [_token(r) for r in await conn.execute(query)]
            return rows, int(await conn.scalar(total) or 0)

    async def set_token_enabled(self, token_id: int, enabled: bool) -> None:
        async with self._store.begin() as conn:
            done = await conn.execute(
                update(t_web_token).where(t_web_token.c.id == token_id).values(enabled=int(enabled))
            )
        if done.rowcount == 0:
            raise NotFound(f"no token {token_id}")

    async def delete_token(self, token_id: int) -> None:
        async with self._store.begin() as conn:
            done = await conn.execute(delete(t_web_token).where(t_web_token.c.id == token_id))
        if done.rowcount == 0:
            raise NotFound(f"no token {token_id}")

    async def token_used(self, token_id: int) -> None:
        async with self._store.begin() as conn:
            await conn.execute(
                update(t_web_token)
                .where(t_web_token.c.id == token_id)
                .values(last_used=self._store.clock())
            )

    # -- sessions ---------------------------------------------------------------------------

    async def add_session(self, sid_hash: str, uid: str, csrf: str, expire_time: datetime) -> None:
        now = self._store.clock()
        async with self._store.begin() as conn:
            await conn.execute(delete(t_web_session).where(t_web_session.c.expire_time < now))
            await conn.execute(
                insert(t_web_session).values(
                    sid_hash=sid_hash, uid=uid, csrf=csrf, create_time=now, expire_time=expire_time
                )
            )

    async def session(self, sid_hash: str) -> SessionRow | None:
        """The live session (None once expired or ended)."""
        async with self._store.connect() as conn:
            row = (
                await conn.execute(
                    select(t_web_session).where(
                        t_web_session.c.sid_hash == sid_hash,
                        t_web_session.c.expire_time > self._store.clock(),
                    )
                )
            ).first()
        return (
            None if row is None else SessionRow(row.uid, row.csrf, row.create_time, row.expire_time)
        )

    async def end_session(self, sid_hash: str) -> None:
        async with self._store.begin() as conn:
            await conn.execute(delete(t_web_session).where(t_web_session.c.sid_hash == sid_hash))
