"""Who may do what: roles and permissions on ``*``, ``App`` or ``App.Server``.

Upstream's roles (TarsWeb ``t_auth (flag, role, uid)``): **admin**, **operator** and
**developer**, each granted on ``*`` (everything), an application ``App`` or one server
``App.Server``; a check tries ``App.Server``, then ``App``, then ``*``. As upstream intends (and
does not consistently enforce), an operator fully manages what it is granted and a developer
only looks. On top, five permissions can be granted alone (Tars#861; docs/console.md
"Roles"): ``upload``, ``publish``, ``restart``, ``config_edit``, ``config_push`` — e.g. a
developer who may upload and publish one server. Every grant lets its holder see what it covers.

``admin`` (the permission) is the platform's own administration: users, grants, tokens, the
audit log, nodes and templates; it is checked on ``*``.

An :class:`Actor` carries the grants of the one calling (a console user, an API token limited
by its scopes and target, the script token, the local CLI operator); :meth:`Actor.require`
raises :class:`~tarsus.ops.errors.Denied`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from tarsus.ops.errors import Denied, Invalid

__all__ = [
    "EVERYTHING",
    "GRANTABLE",
    "ROLES",
    "Actor",
    "Grant",
    "Perm",
    "Visibility",
    "check_flag",
    "parse_scopes",
]

#: the flag of a grant on everything
EVERYTHING = "*"


class Perm(StrEnum):
    #: see servers, instances, configs, charts, logs (every grant includes it)
    VIEW = "view"
    #: deploy, expand, edit, undeploy, admin commands, traffic on/off
    OPERATE = "operate"
    #: start, stop, restart
    RESTART = "restart"
    #: upload a package
    UPLOAD = "upload"
    #: publish a package (patch task), roll back
    PUBLISH = "publish"
    #: add, edit, delete, restore config files
    CONFIG_EDIT = "config_edit"
    #: push a config to instances (``tars.loadconfig``)
    CONFIG_PUSH = "config_push"
    #: users, grants, tokens, audit log, nodes, templates (on ``*``)
    ADMIN = "admin"


ROLES: dict[str, frozenset[Perm]] = {
    "admin": frozenset(Perm),
    "operator": frozenset(Perm) - {Perm.ADMIN},
    "developer": frozenset({Perm.VIEW}),
}
#: permissions granted alone, as a grant's ``role``
SINGLE = (Perm.UPLOAD, Perm.PUBLISH, Perm.RESTART, Perm.CONFIG_EDIT, Perm.CONFIG_PUSH)
#: what a grant's ``role`` may be
GRANTABLE: tuple[str, ...] = (*ROLES, *(p.value for p in SINGLE))

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def check_flag(flag: str) -> str:
    """``*``, ``App`` or ``App.Server`` (letters, digits, ``_``, ``-``), or :class:`Invalid`."""
    flag = flag.strip()
    if flag == EVERYTHING:
        return flag
    parts = flag.split(".")
    if len(parts) > 2 or not all(p and len(p) <= 128 and set(p) <= _NAME_CHARS for p in parts):
        raise Invalid(f"scope {flag[:80]!r} must be '*', 'App' or 'App.Server'")
    return flag


def parse_scopes(text: str) -> frozenset[Perm]:
    """A token's scopes, ``"view upload publish"`` or ``"*"``, or :class:`Invalid`."""
    words = text.replace(",", " ").split()
    if not words:
        raise Invalid("a token needs at least one scope (e.g. 'view', or '*' for all)")
    if words == [EVERYTHING]:
        return frozenset(Perm)
    try:
        return frozenset(Perm(w) for w in words)
    except ValueError:
        wrong = next(w for w in words if w not in Perm._value2member_map_)
        raise Invalid(
            f"unknown scope {wrong[:40]!r}; scopes are {', '.join(p.value for p in Perm)}"
        ) from None


@dataclass(frozen=True, slots=True)
class Grant:
    role: str
    flag: str

    @property
    def perms(self) -> frozenset[Perm]:
        if self.role in ROLES:
            return ROLES[self.role]
        return frozenset({Perm(self.role), Perm.VIEW})

    def covers(self, app: str | None, server: str | None) -> bool:
        """Whether the grant reaches ``app``/``server`` (None: the platform itself)."""
        if self.flag == EVERYTHING:
            return True
        if app is None:
            return False
        grant_app, _, grant_server = self.flag.partition(".")
        if grant_app != app:
            return False
        return not grant_server or grant_server == server


@dataclass(frozen=True)
class Visibility:
    """What a list may show: everything, or these applications and these servers."""

    everything: bool
    apps: frozenset[str] = frozenset()
    servers: frozenset[tuple[str, str]] = frozenset()

    @property
    def nothing(self) -> bool:
        return not self.everything and not self.apps and not self.servers

    def shows(self, app: str, server: str) -> bool:
        return self.everything or app in self.apps or (app, server) in self.servers


@dataclass(frozen=True)
class Actor:
    """Who is calling: ``uid``, how (``via``: ``session``, ``token``, ``script-token``,
    ``cli``), their grants, and for a token its limits (scopes and target)."""

    uid: str
    via: str
    grants: tuple[Grant, ...]
    #: a token's scopes (None: no limit beyond the grants)
    scopes: frozenset[Perm] | None = None
    #: a token's target: only this ``App`` / ``App.Server`` (``*``: no limit)
    limit: str = EVERYTHING
    #: the session's CSRF token (console sessions only)
    csrf: str = field(default="", repr=False)
    #: the client's address, for the audit log
    client: str = ""

    @classmethod
    def local(cls, uid: str) -> Actor:
        """The local operator: at the framework host's shell (``tarsus web user ...``), or
        running the ``tarsus`` CLI (docs/cli-operate.md, "One service layer"). Admin here: what
        it may do is what its framework keys (docs/security.md) let it reach."""
        return cls(uid=uid, via="cli", grants=(Grant("admin", EVERYTHING),))

    def can(self, perm: Perm, app: str | None = None, server: str | None = None) -> bool:
        """Whether the actor may ``perm`` on ``app``/``server`` (both None: the platform)."""
        if self.scopes is not None and perm not in self.scopes:
            return False
        if self.limit != EVERYTHING and not Grant("", self.limit).covers(app, server):
            return False
        return any(perm in g.perms and g.covers(app, server) for g in self.grants)

    def can_somewhere(self, perm: Perm) -> bool:
        """Whether any grant gives ``perm`` at all (a list then shows what it covers)."""
        if self.scopes is not None and perm not in self.scopes:
            return False
        return any(perm in g.perms for g in self.grants)

    def require(self, perm: Perm, app: str | None = None, server: str | None = None) -> None:
        if not self.can(perm, app, server):
            what = "the platform" if app is None else app if server is None else f"{app}.{server}"
            raise Denied(f"{self.uid} may not {perm.value} on {what}")

    def visible(self, perm: Perm = Perm.VIEW) -> Visibility:
        """What a list of servers may show this actor."""
        if self.scopes is not None and perm not in self.scopes:
            return Visibility(False)
        apps: set[str] = set()
        servers: set[tuple[str, str]] = set()
        limit = None if self.limit == EVERYTHING else self.limit
        for g in self.grants:
            if perm not in g.perms:
                continue
            flag = g.flag
            if limit is not None:  # the narrower of the grant and the token's target
                if flag == EVERYTHING or limit.startswith(flag + "."):
                    flag = limit
                elif flag != limit and not flag.startswith(limit + "."):
                    continue
            if flag == EVERYTHING:
                return Visibility(True)
            app, _, server = flag.partition(".")
            if server:
                servers.add((app, server))
            else:
                apps.add(app)
        return Visibility(False, frozenset(apps), frozenset(servers))

    @property
    def is_admin(self) -> bool:
        return self.can(Perm.ADMIN)
