"""Users, their roles (grants) and API tokens; the first ``admin``; password changes.

Everything here but a user's own password and tokens is admin's (:data:`Perm.ADMIN` on
``*``). Tokens are shown once when made and stored as SHA-256: a leaked database does not
leak them. A token acts as its user, narrowed to its scopes and target (``App`` or
``App.Server``), until its expiry, while enabled (docs/console.md).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tarsus.ops import audit
from tarsus.ops.access import EVERYTHING, GRANTABLE, Actor, Grant, Perm, check_flag, parse_scopes
from tarsus.ops.errors import Conflict, Denied, Invalid, NotFound
from tarsus.ops.paging import Page, PageQuery
from tarsus.ops.passwords import check_new_password, generate, hash_password, verify
from tarsus.ops.platform import Platform
from tarsus.store import errors as store_errors
from tarsus.store.users import GrantRow, TokenRow, UserRow

__all__ = [
    "ADMIN_UID",
    "NewToken",
    "User",
    "add_grant",
    "change_password",
    "create_token",
    "create_user",
    "delete_grant",
    "delete_token",
    "delete_user",
    "ensure_admin",
    "grants",
    "hash_token",
    "list_tokens",
    "list_users",
    "reset_password",
    "set_token_enabled",
    "set_user_enabled",
]

ADMIN_UID = "admin"
_UID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
#: prefix of the tokens made here (so a leaked one is recognisable in logs and scanners)
TOKEN_PREFIX = "tsk_"


@dataclass(frozen=True)
class User:
    uid: str
    enabled: bool
    create_time: datetime | None
    password_time: datetime | None
    grants: tuple[GrantRow, ...]


@dataclass(frozen=True)
class NewToken:
    """A token just made: ``secret`` is shown this once."""

    row: TokenRow
    secret: str


def check_uid(uid: str) -> str:
    if not _UID.fullmatch(uid):
        raise Invalid(
            f"user name {uid[:80]!r}: 1-64 letters, digits, '_', '.', '@' or '-', "
            "starting with a letter or digit"
        )
    return uid


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()


def _public(row: UserRow, grants: list[GrantRow]) -> User:
    return User(row.uid, row.enabled, row.create_time, row.password_time, tuple(grants))


# --------------------------------------------------------------------------- the first admin


async def ensure_admin(platform: Platform, password_file: Path | None = None) -> str | None:
    """Create ``admin`` (``admin`` on ``*``) when there is no user at all. Its password is
    the first line of ``password_file``, or generated and returned (to be shown once); None
    when users exist already."""
    store = platform.store
    if await store.users.count() > 0:
        return None
    if password_file is not None:
        try:
            password = password_file.read_text(encoding="utf-8").splitlines()[0].strip()
        except (OSError, UnicodeDecodeError, IndexError) as e:
            raise Invalid(f"cannot read the admin password from {password_file}: {e}") from None
        check_new_password(password)
        shown = None
    else:
        password = generate()
        shown = password
    try:
        await store.users.create(ADMIN_UID, await hash_password(password), by="tarsus")
    except store_errors.Conflict:
        return None  # another process made it first
    await store.users.add_grant(ADMIN_UID, "admin", EVERYTHING, by="tarsus")
    await audit.record(
        platform, Actor.local("tarsus"), "user.create", ADMIN_UID, after={"roles": ["admin@*"]}
    )
    return shown


# --------------------------------------------------------------------------- users


async def list_users(platform: Platform, actor: Actor, query: PageQuery) -> Page[User]:
    actor.require(Perm.ADMIN)
    rows, total = await platform.store.users.page(query.q, query.offset, query.size)
    users = [_public(r, await platform.store.users.grants_of(r.uid)) for r in rows]
    return Page.of(users, total, query)


async def get_user(platform: Platform, actor: Actor, uid: str) -> User:
    if uid != actor.uid:
        actor.require(Perm.ADMIN)
    row = await platform.store.users.get(uid)
    if row is None:
        raise NotFound(f"no user {uid}")
    return _public(row, await platform.store.users.grants_of(uid))


async def create_user(
    platform: Platform, actor: Actor, uid: str, password: str, roles: Sequence[tuple[str, str]] = ()
) -> User:
    """A user with a password (and grants ``(role, flag)``)."""
    actor.require(Perm.ADMIN)
    check_uid(uid)
    check_new_password(password)
    checked = [_check_grant(role, flag) for role, flag in roles]
    try:
        await platform.store.users.create(uid, await hash_password(password), by=actor.uid)
        for role, flag in checked:
            await platform.store.users.add_grant(uid, role, flag, by=actor.uid)
    except store_errors.Conflict as e:
        raise Conflict(str(e)) from None
    await audit.record(
        platform, actor, "user.create", uid, after={"roles": [f"{r}@{f}" for r, f in checked]}
    )
    return await get_user(platform, actor, uid)


async def delete_user(platform: Platform, actor: Actor, uid: str) -> None:
    actor.require(Perm.ADMIN)
    if uid == actor.uid:
        raise Conflict("you cannot delete yourself; another admin can")
    before = await get_user(platform, actor, uid)
    await _keep_an_admin(platform, uid)
    await platform.store.users.delete(uid)
    await audit.record(platform, actor, "user.delete", uid, before=_summary(before))


async def set_user_enabled(platform: Platform, actor: Actor, uid: str, enabled: bool) -> None:
    actor.require(Perm.ADMIN)
    before = await get_user(platform, actor, uid)
    if not enabled:
        if uid == actor.uid:
            raise Conflict("you cannot disable yourself; another admin can")
        await _keep_an_admin(platform, uid)
    await platform.store.users.set_enabled(uid, enabled, by=actor.uid)
    await audit.record(
        platform,
        actor,
        "user.enable" if enabled else "user.disable",
        uid,
        before={"enabled": before.enabled},
        after={"enabled": enabled},
    )


async def reset_password(platform: Platform, actor: Actor, uid: str, password: str) -> None:
    """An admin sets another's password (their sessions end)."""
    actor.require(Perm.ADMIN)
    check_new_password(password)
    await get_user(platform, actor, uid)
    await platform.store.users.set_password(uid, await hash_password(password), by=actor.uid)
    await audit.record(platform, actor, "user.password_reset", uid, after={"password": "changed"})


async def change_password(platform: Platform, actor: Actor, current: str, new: str) -> None:
    """The actor's own password, knowing the current one (every session of theirs ends)."""
    if actor.via not in ("session", "cli"):
        raise Denied("a password is changed in a console session, not with a token")
    row = await platform.store.users.get(actor.uid)
    if row is None or not await verify(current, row.password):
        raise Invalid("the current password is not right")
    check_new_password(new)
    if new == current:
        raise Invalid("the new password is the current one")
    await platform.store.users.set_password(actor.uid, await hash_password(new), by=actor.uid)
    await audit.record(platform, actor, "user.password", actor.uid, after={"password": "changed"})


def _summary(user: User) -> dict[str, object]:
    return {"enabled": user.enabled, "roles": [f"{g.role}@{g.flag}" for g in user.grants]}


async def _keep_an_admin(platform: Platform, uid: str) -> None:
    """:class:`Conflict` if ``uid`` is the last enabled user with admin on ``*``."""
    row = await platform.store.users.get(uid)
    grants = await platform.store.users.grants_of(uid)
    if row is None or not row.enabled or not any(_is_root(g) for g in grants):
        return
    offset = 0
    while True:
        rows, _total = await platform.store.users.page("", offset, 200)
        for other in rows:
            if other.uid == uid or not other.enabled:
                continue
            if any(_is_root(g) for g in await platform.store.users.grants_of(other.uid)):
                return
        if len(rows) < 200:
            break
        offset += 200
    raise Conflict(f"{uid} is the last admin: make another user admin on '*' first")


def _is_root(g: GrantRow) -> bool:
    return g.role == "admin" and g.flag == EVERYTHING


# --------------------------------------------------------------------------- grants (roles)


def _check_grant(role: str, flag: str) -> tuple[str, str]:
    if role not in GRANTABLE:
        raise Invalid(f"role {role[:40]!r} is none of {', '.join(GRANTABLE)}")
    return role, check_flag(flag)


async def grants(platform: Platform, actor: Actor, query: PageQuery) -> Page[GrantRow]:
    actor.require(Perm.ADMIN)
    rows, total = await platform.store.users.grant_page(query.q, query.offset, query.size)
    return Page.of(rows, total, query)


async def add_grant(platform: Platform, actor: Actor, uid: str, role: str, flag: str) -> GrantRow:
    actor.require(Perm.ADMIN)
    role, flag = _check_grant(role, flag)
    try:
        grant_id = await platform.store.users.add_grant(uid, role, flag, by=actor.uid)
    except store_errors.NotFound as e:
        raise NotFound(str(e)) from None
    except store_errors.Conflict as e:
        raise Conflict(str(e)) from None
    await audit.record(platform, actor, "grant.add", uid, after={"role": role, "flag": flag})
    row = await platform.store.users.get_grant(grant_id)
    assert row is not None
    return row


async def delete_grant(platform: Platform, actor: Actor, grant_id: int) -> None:
    actor.require(Perm.ADMIN)
    row = await platform.store.users.get_grant(grant_id)
    if row is None:
        raise NotFound(f"no grant {grant_id}")
    if _is_root(row):
        await _keep_an_admin(platform, row.uid)
    await platform.store.users.delete_grant(grant_id)
    await audit.record(
        platform, actor, "grant.delete", row.uid, before={"role": row.role, "flag": row.flag}
    )


# --------------------------------------------------------------------------- tokens


def _may_manage(actor: Actor, row: TokenRow) -> None:
    if row.uid != actor.uid:
        actor.require(Perm.ADMIN)


async def list_tokens(
    platform: Platform, actor: Actor, query: PageQuery, *, everyone: bool = False
) -> Page[TokenRow]:
    """The actor's own tokens, or (admin) everyone's."""
    if everyone:
        actor.require(Perm.ADMIN)
    rows, total = await platform.store.users.token_page(
        None if everyone else actor.uid, query.q, query.offset, query.size
    )
    return Page.of(rows, total, query)


async def create_token(
    platform: Platform,
    actor: Actor,
    name: str,
    scopes: str,
    flag: str = EVERYTHING,
    expires: datetime | None = None,
) -> NewToken:
    """A token of the actor's own, no wider than the actor (a token cannot make tokens)."""
    if actor.via not in ("session", "cli"):
        raise Denied("tokens are made in a console session")
    name = name.strip()
    if not name or len(name) > 64 or any(ord(c) < 32 for c in name):
        raise Invalid("a token needs a name of 1-64 printable characters")
    perms = parse_scopes(scopes)
    flag = check_flag(flag)
    # Used, a token is narrowed to its user's grants anyway; asking for more is a mistake.
    missing = sorted(p.value for p in perms if not actor.can_somewhere(p))
    if missing:
        raise Denied(f"{actor.uid} may not {', '.join(missing)} anywhere: no such token either")
    if flag != EVERYTHING:
        app, _, server = flag.partition(".")
        actor.require(Perm.VIEW, app, server or None)
    if expires is not None and expires <= platform.store.clock():
        raise Invalid("the expiry is in the past")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    stored_scopes = "*" if perms == frozenset(Perm) else " ".join(sorted(p.value for p in perms))
    token_id = await platform.store.users.add_token(
        actor.uid, name, hash_token(secret), stored_scopes, flag, expires
    )
    row = await platform.store.users.get_token(token_id)
    assert row is not None
    await audit.record(
        platform,
        actor,
        "token.create",
        f"{actor.uid}/{name}",
        after={"id": token_id, "scopes": stored_scopes, "flag": flag, "expires": expires},
    )
    return NewToken(row, secret)


async def set_token_enabled(platform: Platform, actor: Actor, token_id: int, enabled: bool) -> None:
    row = await platform.store.users.get_token(token_id)
    if row is None:
        raise NotFound(f"no token {token_id}")
    _may_manage(actor, row)
    await platform.store.users.set_token_enabled(token_id, enabled)
    await audit.record(
        platform,
        actor,
        "token.enable" if enabled else "token.disable",
        f"{row.uid}/{row.name}",
        before={"enabled": row.enabled},
        after={"enabled": enabled},
    )


async def delete_token(platform: Platform, actor: Actor, token_id: int) -> None:
    row = await platform.store.users.get_token(token_id)
    if row is None:
        raise NotFound(f"no token {token_id}")
    _may_manage(actor, row)
    await platform.store.users.delete_token(token_id)
    await audit.record(
        platform,
        actor,
        "token.delete",
        f"{row.uid}/{row.name}",
        before={"id": row.id, "scopes": row.scopes, "flag": row.flag},
    )


def grants_of_rows(rows: list[GrantRow]) -> tuple[Grant, ...]:
    return tuple(Grant(r.role, r.flag) for r in rows if r.role in GRANTABLE)
