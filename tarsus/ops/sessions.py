"""Who is calling: console logins and sessions, API tokens, and the login rate limit.

A login checks the password (scrypt) and opens a server-side session: a random id whose
SHA-256 is stored with the user and a CSRF token, ended by logout, by a password change and by
disabling the user; the web face carries the id in a signed, HttpOnly, SameSite cookie
(:mod:`tarsus.web.security`). Failed logins are limited per user name and per client address
(:class:`LoginThrottle`). An API token (``Authorization: Bearer`` or upstream's ``?ticket=``)
is looked up by its SHA-256; expired, disabled or unknown tokens are refused alike.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from tarsus.ops import audit
from tarsus.ops.access import Actor, parse_scopes
from tarsus.ops.errors import TooMany, Unauthenticated
from tarsus.ops.passwords import MAX_PASSWORD, verify
from tarsus.ops.platform import Platform
from tarsus.ops.users import grants_of_rows, hash_token

__all__ = [
    "SESSION_HOURS",
    "LoginThrottle",
    "Session",
    "actor_for_session",
    "actor_for_token",
    "login",
    "logout",
]

#: hours a console session lasts after login
SESSION_HOURS = 12
#: seconds between two writes of a token's last use
_LAST_USE_EVERY = 60.0


@dataclass(frozen=True)
class Session:
    """A session just opened: ``sid`` goes into the cookie, ``csrf`` into every form."""

    sid: str
    uid: str
    csrf: str


class LoginThrottle:
    """At most ``per_user`` failed logins per ``window`` seconds for one user name, and
    ``per_client`` for one client address (several people behind one proxy); more are refused
    (429) until the window has passed, whether the password is right or not. Bounded memory:
    the oldest keys are forgotten past ``max_keys``."""

    def __init__(
        self,
        per_user: int = 5,
        per_client: int = 30,
        window: float = 300.0,
        max_keys: int = 10000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_user = per_user
        self.per_client = per_client
        self.window = window
        self.max_keys = max_keys
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str) -> deque[float]:
        now = self._clock()
        q = self._failures.get(key)
        if q is None:
            return deque()
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def check(self, *keys: str) -> None:
        for key in keys:
            q = self._recent(key)
            limit = self.per_user if key.startswith("user:") else self.per_client
            if len(q) >= limit:
                wait = max(1, int(q[0] + self.window - self._clock()) + 1)
                raise TooMany(
                    f"too many failed logins; try again in {wait} s",
                    headers={"Retry-After": str(wait)},
                )

    def failed(self, *keys: str) -> None:
        now = self._clock()
        for key in keys:
            q = self._failures.pop(key, None) or deque()
            q.append(now)
            self._failures[key] = q
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def succeeded(self, uid_key: str) -> None:
        self._failures.pop(uid_key, None)


def _sid_hash(sid: str) -> str:
    return hashlib.sha256(sid.encode("ascii", "replace")).hexdigest()


async def login(
    platform: Platform, throttle: LoginThrottle, uid: str, password: str, client: str
) -> Session:
    """A new session for ``uid``, or :class:`Unauthenticated` (the same message whether the
    user exists or not), or :class:`TooMany`."""
    keys = (f"user:{uid[:64]}", f"client:{client}")
    throttle.check(*keys)
    row = await platform.store.users.get(uid) if len(uid) <= 64 else None
    ok = row is not None and row.enabled and len(password) <= MAX_PASSWORD
    if row is not None and ok:
        ok = await verify(password, row.password)
    if not ok:
        throttle.failed(*keys)
        who = Actor(uid=uid[:64], via="session", grants=(), client=client)
        await audit.record(platform, who, "login.failed", uid[:64])
        raise Unauthenticated("wrong user name or password")
    throttle.succeeded(keys[0])
    sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    expires = platform.store.clock() + timedelta(hours=SESSION_HOURS)
    await platform.store.users.add_session(_sid_hash(sid), uid, csrf, expires)
    actor = Actor(uid=uid, via="session", grants=(), client=client)
    await audit.record(platform, actor, "login", uid)
    return Session(sid, uid, csrf)


async def logout(platform: Platform, actor: Actor, sid: str) -> None:
    await platform.store.users.end_session(_sid_hash(sid))
    await audit.record(platform, actor, "logout", actor.uid)


async def actor_for_session(platform: Platform, sid: str, client: str) -> Actor | None:
    """The actor of a live session of an enabled user, or None."""
    session = await platform.store.users.session(_sid_hash(sid))
    if session is None:
        return None
    user = await platform.store.users.get(session.uid)
    if user is None or not user.enabled:
        return None
    grants = grants_of_rows(await platform.store.users.grants_of(session.uid))
    return Actor(session.uid, "session", grants, csrf=session.csrf, client=client)


async def actor_for_token(platform: Platform, secret: str, client: str) -> Actor:
    """The actor of an API token, or :class:`Unauthenticated` (unknown, disabled, expired,
    or its user disabled)."""
    if len(secret) > 512:
        raise Unauthenticated("the token is not valid")
    row = await platform.store.users.token_by_hash(hash_token(secret))
    if row is None or not row.enabled:
        raise Unauthenticated("the token is not valid")
    if row.expire_time is not None and row.expire_time <= platform.store.clock():
        raise Unauthenticated("the token has expired")
    user = await platform.store.users.get(row.uid)
    if user is None or not user.enabled:
        raise Unauthenticated("the token is not valid")
    now = platform.store.clock()
    if row.last_used is None or (now - row.last_used).total_seconds() >= _LAST_USE_EVERY:
        await platform.store.users.token_used(row.id)
    grants = grants_of_rows(await platform.store.users.grants_of(row.uid))
    return Actor(
        row.uid, "token", grants, scopes=parse_scopes(row.scopes), limit=row.flag, client=client
    )
