"""The locator: bare object names resolved through the registry (``tars.tarsregistry.QueryObj``).

A proxy string without endpoints (``App.Server.Obj``) is resolved by asking the registry's
``QueryF`` interface, as every Tars client does (TarsCpp ``QueryEpBase``/``EndpointManager``,
TarsGo ``endpointmanager.go``). Per communicator there is one :class:`Locator`; per resolved
object one :class:`EndpointManager`, which keeps the object's endpoint list in step:

- the first call waits for the first answer (within its own timeout);
- a background task asks again on the C++ schedule (:class:`RefreshSchedule`): every
  ``refresh_interval``; ``active_empty_interval`` after an answer with no active endpoint
  (the old list stays); ``fail_interval`` after a failed query, ``many_fail_interval`` once
  more than ``fail_times_limit`` failed in a row;
- each new answer is saved in an on-disk cache (:class:`EndpointCache`), read at start and
  whenever the registry cannot be reached, so clients keep finding their servers while the
  registry is down, even across restarts.

A live registry's answer is authoritative; the cache only bridges a registry that cannot be
reached. Calls start on cached endpoints at once (no wait for the registry), but when every one
of them refuses the connection before the registry has answered, the call waits (within its
timeout) for that first answer and goes where it says; an answer with no active endpoint drops
endpoints that only the cache knew. Once the registry has answered, a call whose every endpoint
refuses asks it again at once (at most once per ``fail_interval``) instead of failing until the
next scheduled refresh, and so does a call that finds no endpoint at all (the registry was
down, or listed none active, at the last lookup). Both are deliberate differences from TarsCpp,
whose clients keep calling cached or refused endpoints until ``refresh-endpoint-interval`` is
over: a short-lived client (``tarsus call``) would otherwise never reach a server that moved to
another port (docs/rpc-client.md, "Registry names (the locator)").

Which ``QueryF`` call: ``findObjectByIdInSameGroup`` by default, as TarsCpp, TarsGo and the
Node SDK do. Without IDC groups configured in the registry it answers exactly what
``findObjectById4Any`` answers (every endpoint); with them it keeps calls inside the caller's
IDC, which is what operators who configured groups expect. ``findObjectById4Any`` (no grouping,
C++'s "all endpoints" mode) is available as an option. In set mode (``enableset`` with a
``setdivision``), ``findObjectByIdInSameSet(id, setdivision)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final, Literal, TypeVar

from tarsus.codec.constants import CONTEXT_NODE_NAME
from tarsus.protocol.gen import QueryF
from tarsus.protocol.gen.EndpointF import EndpointF
from tarsus.rpc.client import ObjectProxy
from tarsus.rpc.endpoint import Endpoint, EndpointError, parse_proxy
from tarsus.rpc.errors import NoEndpointError, TarsError
from tarsus.rpc.periodic import Periodic
from tarsus.rpc.proxy import CallOptions

try:  # advisory lock for processes sharing one cache file (POSIX only)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "CACHE_FILE_NAME",
    "CachedEndpoints",
    "EndpointCache",
    "EndpointManager",
    "Locator",
    "QueryMethod",
    "RefreshSchedule",
    "RegistryObjectProxy",
    "check_set_division",
    "default_cache_dir",
]

log = logging.getLogger("tarsus.rpc.locator")

T = TypeVar("T")

#: The QueryF calls a locator can resolve names with (set mode uses findObjectByIdInSameSet).
QueryMethod = Literal["findObjectByIdInSameGroup", "findObjectById4Any", "findObjectById4All"]
_QUERY_METHODS: Final = ("findObjectByIdInSameGroup", "findObjectById4Any", "findObjectById4All")

CACHE_FILE_NAME: Final = "endpoints.json"
_CACHE_VERSION: Final = 1
#: Problems with one object (registry down, empty answers) are logged at most this often.
LOG_INTERVAL: Final = 60.0


# -- settings ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RefreshSchedule:
    """When an :class:`EndpointManager` asks the registry again (seconds).

    The defaults are TarsCpp's ``QueryEpBase`` (``EndpointManager.cpp``). C++ refuses a
    ``refresh-endpoint-interval`` below 5 s; :meth:`from_interval_ms` applies that floor, a
    schedule built directly does not (tests use sub-second schedules).

    Deliberate difference: C++ reads an unset ``refresh-endpoint-interval`` as the string
    ``"60*1000"``, which parses as 60 and is raised to 5000 ms; here the default is the 60 s
    every tarsnode-generated config sets explicitly (and TarsGo and Node use).
    """

    #: between queries while the registry answers with endpoints
    refresh_interval: float = 60.0
    #: after an answer with no active endpoint (the old list is kept)
    active_empty_interval: float = 10.0
    #: after a failed query (no answer, or a non-zero return code)
    fail_interval: float = 2.0
    #: after more than ``fail_times_limit`` failed queries in a row
    many_fail_interval: float = 30.0
    fail_times_limit: int = 3
    #: a query in flight fails after this long
    query_timeout: float = 5.0
    #: with several registries in the locator: a lookup one registry has not answered
    #: within this long is also sent to the next (the first answer wins), so a registry
    #: host that went silent costs lookups this much, not ``query_timeout``
    hedge_delay: float = 0.5

    MIN_REFRESH_INTERVAL_MS: ClassVar[int] = 5000

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name == "fail_times_limit":
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ValueError(
                        f"RefreshSchedule.fail_times_limit must be an int >= 0, got {value!r}"
                    )
            elif (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value <= 0
            ):
                raise ValueError(f"RefreshSchedule.{field.name} must be seconds > 0, got {value!r}")

    @classmethod
    def from_interval_ms(cls, refresh_endpoint_interval_ms: int) -> RefreshSchedule:
        """The default schedule with C++'s ``refresh-endpoint-interval`` (floor 5000 ms)."""
        ms = max(int(refresh_endpoint_interval_ms), cls.MIN_REFRESH_INTERVAL_MS)
        return cls(refresh_interval=ms / 1000.0)


def check_set_division(text: str) -> str:
    """Validate a ``setdivision`` (``name.area.group``; the group may be ``*``)."""
    parts = text.split(".") if isinstance(text, str) else []
    if len(parts) != 3 or not all(parts) or "*" in parts[:2] or any(c.isspace() for c in text):
        raise ValueError(
            f"setdivision must be 'name.area.group' (e.g. 'app.sz.1'; only the group may "
            f"be '*'), got {text!r}"
        )
    return text


def default_cache_dir() -> Path:
    """``$TARSUS_CACHE_DIR``, else ``$XDG_CACHE_HOME/tarsus``, else ``~/.cache/tarsus``."""
    env = os.environ.get("TARSUS_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "tarsus"


# -- the on-disk cache ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CachedEndpoints:
    """One object's last registry answer. ``saved`` is a Unix time."""

    active: tuple[Endpoint, ...]
    inactive: tuple[Endpoint, ...]
    saved: float


#: (canonical locator, setdivision or "", object name)
_Key = tuple[str, str, str]


class EndpointCache:
    """The last registry answer per (locator, set, object), kept in one JSON file.

    The file holds endpoint strings, readable and editable by hand::

        {"version": 1, "entries": [{"locator": "tars.tarsregistry.QueryObj@tcp -h ...",
          "set": "", "object": "App.Server.Obj", "active": ["tcp -h 10.0.0.5 -p 9000 -t 60000"],
          "inactive": [], "saved": 1700000000.0}]}

    Writes are atomic (temp file, fsync, rename) and merge with what is on disk under an
    advisory lock, so processes sharing the cache directory keep each other's entries.
    A file that cannot be read or parsed is ignored with a warning and replaced at the next
    write; the cache never stops a client.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._entries: dict[_Key, CachedEndpoints] | None = None
        self._dirty: dict[_Key, CachedEndpoints] = {}
        self._flushing: asyncio.Task[None] | None = None

    # -- reading -----------------------------------------------------------------------------

    def get(self, locator: str, set_division: str, obj_name: str) -> CachedEndpoints | None:
        """The cached answer, reading the file on first use."""
        if self._entries is None:
            self._entries = self._read()
        return self._entries.get((locator, set_division, obj_name))

    def reload(self, locator: str, set_division: str, obj_name: str) -> CachedEndpoints | None:
        """Read the file again (another process may have written it), then :meth:`get`."""
        entries = self._read()
        entries.update(self._dirty)
        self._entries = entries
        return entries.get((locator, set_division, obj_name))

    def _read(self, *, level: int = logging.WARNING) -> dict[_Key, CachedEndpoints]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as e:
            log.log(level, "ignoring unreadable endpoint cache %s: %s", self.path, e)
            return {}
        try:
            return _parse_cache(text)
        except (ValueError, TypeError, KeyError) as e:
            log.log(
                level,
                "ignoring corrupt endpoint cache %s (it is rewritten at the next registry "
                "answer): %s",
                self.path,
                e,
                extra={"cache_file": str(self.path)},
            )
            return {}

    # -- writing -----------------------------------------------------------------------------

    def put(
        self,
        locator: str,
        set_division: str,
        obj_name: str,
        active: Sequence[Endpoint],
        inactive: Sequence[Endpoint],
    ) -> None:
        """Remember an answer; the file is written in the background (see :meth:`flush`)."""
        if self._entries is None:
            self._entries = self._read()
        key = (locator, set_division, obj_name)
        known = self._entries.get(key)
        if (
            known is not None
            and set(known.active) == set(active)
            and set(known.inactive) == set(inactive)
        ):
            return
        entry = CachedEndpoints(tuple(active), tuple(inactive), time.time())
        self._entries[key] = entry
        self._dirty[key] = entry
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.ensure_future(self._flush())

    async def flush(self) -> None:
        """Wait until every remembered answer is on disk (or its write failed and was logged)."""
        while self._flushing is not None and not self._flushing.done():
            await asyncio.shield(self._flushing)
        if self._dirty:
            await self._flush()

    async def _flush(self) -> None:
        while self._dirty:
            batch, self._dirty = self._dirty, {}
            try:
                await asyncio.to_thread(self._write, batch)
            except OSError as e:
                log.warning(
                    "cannot write endpoint cache %s: %s",
                    self.path,
                    e,
                    extra={"cache_file": str(self.path)},
                )
            except Exception:  # never let the cache take a client down
                log.exception("cannot write endpoint cache %s", self.path)

    def _write(self, batch: dict[_Key, CachedEndpoints]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked():
            entries = self._read(level=logging.DEBUG)  # get() warned about a bad file
            entries.update(batch)
            data = _format_cache(entries)
            fd, tmp = tempfile.mkstemp(
                dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp"
            )
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        if fcntl is None:  # pragma: no cover - Windows: rename is still atomic
            yield
            return
        lock_path = self.path.with_name(self.path.name + ".lock")
        with open(lock_path, "a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _parse_cache(text: str) -> dict[_Key, CachedEndpoints]:
    doc = json.loads(text)
    if not isinstance(doc, dict) or doc.get("version") != _CACHE_VERSION:
        raise ValueError(f"expected an object with version {_CACHE_VERSION}")
    raw_entries = doc["entries"]
    if not isinstance(raw_entries, list):
        raise ValueError("'entries' must be a list")
    entries: dict[_Key, CachedEndpoints] = {}
    for i, raw in enumerate(raw_entries):
        try:
            key = (str(raw["locator"]), str(raw["set"]), str(raw["object"]))
            active = tuple(Endpoint.parse(s) for s in raw["active"])
            inactive = tuple(Endpoint.parse(s) for s in raw["inactive"])
            saved = float(raw.get("saved", 0.0))
        except (EndpointError, KeyError, TypeError, ValueError, AttributeError) as e:
            log.warning("endpoint cache: skipping entry %d: %s", i, e)
            continue
        entries[key] = CachedEndpoints(active, inactive, saved)
    return entries


def _format_cache(entries: dict[_Key, CachedEndpoints]) -> str:
    doc = {
        "version": _CACHE_VERSION,
        "entries": [
            {
                "locator": key[0],
                "set": key[1],
                "object": key[2],
                "active": [str(ep) for ep in entry.active],
                "inactive": [str(ep) for ep in entry.inactive],
                "saved": entry.saved,
            }
            for key, entry in sorted(entries.items())
        ],
    }
    return json.dumps(doc, indent=1) + "\n"


# -- the locator and its endpoint managers ----------------------------------------------------


class Locator:
    """The registry as one communicator sees it: the QueryF proxy, how to ask, the cache.

    *query* is the ``ObjectProxy`` of ``tars.tarsregistry.QueryObj@...`` (several registry
    endpoints are then balanced and shielded like any servant's), or one ``ObjectProxy`` per
    registry endpoint, as the communicator makes them: lookups are then hedged across the
    registries (:meth:`ask`).
    """

    def __init__(
        self,
        locator: str,
        query: ObjectProxy | Sequence[ObjectProxy],
        *,
        schedule: RefreshSchedule | None = None,
        query_method: QueryMethod = "findObjectByIdInSameGroup",
        set_division: str | None = None,
        cache: EndpointCache | None = None,
        node_name: str = "",
    ) -> None:
        target = parse_proxy(locator)
        if not target.direct:
            raise ValueError(
                f"locator {locator!r} must name the registry's endpoints, e.g. "
                "'tars.tarsregistry.QueryObj@tcp -h 10.0.0.1 -p 17890'"
            )
        if query_method not in _QUERY_METHODS:
            raise ValueError(
                f"query_method must be one of {', '.join(_QUERY_METHODS)}, not {query_method!r}"
            )
        #: canonical spelling: cache entries do not depend on blanks in the configured string
        self.name = str(target)
        self.schedule = schedule or RefreshSchedule()
        self.query_method: QueryMethod = query_method
        self.set_division = check_set_division(set_division) if set_division else ""
        self.cache = cache
        self._registries: list[tuple[ObjectProxy, QueryF.QueryFProxy]] = []
        for obj in [query] if isinstance(query, ObjectProxy) else query:
            prx = QueryF.QueryFProxy(obj)
            prx = prx.tars_set_timeout(max(1, round(self.schedule.query_timeout * 1000)))
            if node_name:
                # As TarsCpp servers: the registry groups the caller by this (IDC groups)
                prx = prx.with_options(context={CONTEXT_NODE_NAME: node_name})
            self._registries.append((obj, prx))
        if not self._registries:
            raise ValueError(f"locator {locator!r}: no registry proxy given")
        self._turn = 0
        self._stragglers: set[asyncio.Future[Any]] = set()

    @property
    def method(self) -> str:
        """The QueryF call made for each lookup."""
        return "findObjectByIdInSameSet" if self.set_division else self.query_method

    async def find(self, obj_name: str) -> tuple[int, list[EndpointF], list[EndpointF]]:
        """One lookup: (return code, active ``EndpointF`` list, inactive list), asked of the
        registries as :meth:`ask` does."""
        return await self.ask(functools.partial(self._find, obj_name=obj_name))

    async def ask(self, call: Callable[[QueryF.QueryFProxy], Awaitable[T]]) -> T:
        """Run one ``QueryF`` call, ``call(proxy)``, against the registries.

        With one proxy (or one proxy holding every registry endpoint) it is a plain call.
        With one proxy per registry the call is *hedged*: it goes to the registries in turn
        (round-robin, those the client does not shield first), and each ``hedge_delay``
        without an answer, or at once when one fails, also to the next. The first answer
        wins; the calls still under way finish in the background within ``query_timeout``
        (their failures shield a silent registry, as any call's do). So a registry host
        that is cut off delays lookups by ``hedge_delay``, not by ``query_timeout``
        (docs/failover.md). When every registry fails, the last failure is raised.
        """
        order = self._order()
        if len(order) == 1:
            return await call(order[0])
        running: set[asyncio.Future[T]] = set()
        failure: BaseException | None = None
        left = list(order)
        try:
            while left or running:
                if left:
                    running.add(asyncio.ensure_future(call(left.pop(0))))
                done, running = await asyncio.wait(
                    running,
                    timeout=self.schedule.hedge_delay if left else None,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                for task in done:
                    if task.exception() is None:
                        return task.result()
                    failure = task.exception()
            assert failure is not None
            raise failure
        finally:
            for task in running:  # not cancelled: they end within query_timeout
                self._stragglers.add(task)
                task.add_done_callback(self._straggler_done)

    def _straggler_done(self, task: asyncio.Future[Any]) -> None:
        self._stragglers.discard(task)
        if not task.cancelled():
            task.exception()  # seen: its failure was counted by the proxy's health

    def _order(self) -> list[QueryF.QueryFProxy]:
        """The registries for the next call: round-robin, the available ones first."""
        n = len(self._registries)
        start, self._turn = self._turn % n, self._turn + 1
        turn = self._registries[start:] + self._registries[:start]
        now = time.monotonic()
        up = [p for obj, p in turn if any(a.health.available(now) for a in obj.adapters.values())]
        return up + [p for _, p in turn if p not in up]

    async def _find(
        self, prx: QueryF.QueryFProxy, *, obj_name: str
    ) -> tuple[int, list[EndpointF], list[EndpointF]]:
        result: tuple[int, list[EndpointF], list[EndpointF]]
        if self.set_division:
            result = await prx.findObjectByIdInSameSet(obj_name, self.set_division)
        elif self.query_method == "findObjectById4Any":
            result = await prx.findObjectById4Any(obj_name)
        elif self.query_method == "findObjectById4All":
            result = await prx.findObjectById4All(obj_name)
        else:
            result = await prx.findObjectByIdInSameGroup(obj_name)
        return result

    def cached(self, obj_name: str, *, reload: bool = False) -> CachedEndpoints | None:
        if self.cache is None:
            return None
        if reload:
            return self.cache.reload(self.name, self.set_division, obj_name)
        return self.cache.get(self.name, self.set_division, obj_name)

    def remember(
        self, obj_name: str, active: Sequence[Endpoint], inactive: Sequence[Endpoint]
    ) -> None:
        if self.cache is not None:
            self.cache.put(self.name, self.set_division, obj_name, active, inactive)


class EndpointManager:
    """Keeps one registry-resolved object's endpoints current (C++ ``EndpointManager``).

    Starts from the disk cache when it has the object; the background task (started on the
    first call) asks the registry on the :class:`RefreshSchedule`, and at once when every
    endpoint refused a call (:meth:`endpoints_refused`). The registry going away never empties
    the list: calls go on to the last known endpoints.
    """

    def __init__(self, obj: ObjectProxy, locator: Locator) -> None:
        self.obj = obj
        self.locator = locator
        self.failures = 0
        #: why the last lookup gave no usable endpoint ("" after a good answer)
        self.problem = ""
        self._active: frozenset[Endpoint] = frozenset()
        self._inactive: frozenset[Endpoint] = frozenset()
        self._outcome: asyncio.Future[None] | None = None
        # The refresh loop: each round asks the registry and sets the wait until the next;
        # run_now() asks at once.
        self._refresher = Periodic(
            f"tarsus-locator:{obj.name}", lambda: self._delay, self._refresh_round, run_first=True
        )
        self._delay = 0.0
        self._querying = False
        self._settled = False  # a lookup has finished (answered or failed)
        self._answered = False  # the registry has answered (ret 0) in this process
        self._from_cache = False  # the endpoints in use came from the disk cache
        self._last_lookup = -math.inf  # time.monotonic() when the last lookup finished
        self._stopped = False
        self._next_log = -math.inf
        self._log_extra = {"obj": obj.name, "locator": locator.name}
        cached = locator.cached(obj.name)
        if cached is not None:
            self._use_cache(cached)

    @property
    def started(self) -> bool:
        """True once the refresh task runs (or ran: a stopped manager stays started)."""
        return self._refresher.running or self._stopped

    def start(self) -> None:
        """Start the refresh task (needs a running event loop; idempotent; not after stop)."""
        if not self._stopped:
            self._refresher.start()

    async def stop(self) -> None:
        """Stop refreshing; calls go on to the endpoints known now."""
        self._stopped = True
        await self._refresher.stop()
        outcome, self._outcome = self._outcome, None
        if outcome is not None and not outcome.done():
            outcome.set_result(None)  # calls waiting for a lookup see the manager stopped

    async def wait_for_endpoints(self, timeout_ms: int) -> int:
        """Called by a call that finds no active endpoint: wait (at most *timeout_ms*) for the
        lookup under way, or for a new one when the last finished ``fail_interval`` ago or
        more (whatever the refresh schedule says). Returns the milliseconds left for the call;
        raises :class:`NoEndpointError` naming the object, the locator and the reason."""
        self.start()
        if self.obj.selector:
            return timeout_ms
        started = time.monotonic()
        if self._stopped:
            raise NoEndpointError(
                message=f"no endpoint for {self.obj.name}: its communicator is closed"
            )
        ask = (
            self._settled
            and not self._querying
            and time.monotonic() - self._last_lookup >= self.locator.schedule.fail_interval
        )
        if ask:  # the last lookup is old: ask again now rather than fail on its answer
            self._refresher.run_now()
        if ask or self._querying or not self._settled:
            try:
                await asyncio.wait_for(self._next_outcome(), timeout_ms / 1000.0)
            except TimeoutError:
                raise NoEndpointError(
                    message=f"no endpoint for {self.obj.name}: the registry "
                    f"{self.locator.name} gave no answer within {timeout_ms} ms "
                    f"({self.locator.method})"
                ) from None
        if self.obj.selector:
            left = timeout_ms - (time.monotonic() - started) * 1000.0
            return max(1, int(left))
        if self._stopped:
            raise NoEndpointError(
                message=f"no endpoint for {self.obj.name}: its communicator is closed"
            )
        raise NoEndpointError(
            message=f"no endpoint for {self.obj.name} from the registry {self.locator.name}: "
            f"{self.problem or 'no active endpoint'}"
        )

    async def endpoints_refused(self, deadline: float) -> bool:
        """Called when every endpoint in use refused a call's connection (nothing was sent).

        Waits, until *deadline* (``time.monotonic()``) at most, for a registry answer newer
        than those endpoints, and returns True when it changed them (the call then tries the
        new ones). Which answer: the lookup under way if there is one, or this process's first
        (endpoints from the disk cache are only a guess until the registry has answered);
        once the registry has answered, a fresh lookup, at most one per ``fail_interval``.
        A registry that cannot be reached changes nothing: the call fails as it would have.
        Raises :class:`NoEndpointError` when the answer lists no active endpoint.
        """
        if self._stopped or not self._refresher.running:
            return False
        if not self._querying and self._settled:
            if not self._answered:
                return False  # the first lookup failed: the cache is all there is
            if time.monotonic() - self._last_lookup < self.locator.schedule.fail_interval:
                return False
            self._refresher.run_now()
        before = self._active
        try:
            await asyncio.wait_for(self._next_outcome(), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            return False
        if self._active == before:
            return False
        if not self._active:
            raise NoEndpointError(
                message=f"no endpoint for {self.obj.name} from the registry "
                f"{self.locator.name}: {self.problem or 'no active endpoint'}"
            )
        return True

    def _next_outcome(self) -> asyncio.Future[None]:
        """A future done when the lookup under way (or the next one) has finished."""
        if self._outcome is None:
            self._outcome = asyncio.get_running_loop().create_future()
        return asyncio.shield(self._outcome)

    async def _refresh_round(self) -> None:
        self._delay = await self.refresh()

    async def refresh(self) -> float:
        """Ask the registry once and apply the answer; returns seconds until the next lookup."""
        self._querying = True
        try:
            return await self._refresh()
        finally:
            self._querying = False
            self._settled = True
            self._last_lookup = time.monotonic()
            outcome, self._outcome = self._outcome, None
            if outcome is not None and not outcome.done():
                outcome.set_result(None)

    async def _refresh(self) -> float:
        schedule = self.locator.schedule
        name = self.obj.name
        try:
            ret, active_f, inactive_f = await self.locator.find(name)
        except TarsError as e:
            return self._failed(f"{self.locator.method} failed: {e}")
        except Exception as e:  # a bug must not end the refresh loop
            log.exception("locator lookup of %s failed", name, extra=self._log_extra)
            return self._failed(f"{self.locator.method} failed: {type(e).__name__}: {e}")
        if ret != 0:
            return self._failed(f"{self.locator.method} returned {ret}")
        active = self._convert(active_f)
        inactive = self._convert(inactive_f)
        if self.failures:
            log.info(
                "registry %s answers again for %s after %d failed lookups",
                self.locator.name,
                name,
                self.failures,
                extra=self._log_extra,
            )
        self.failures = 0
        self._answered = True
        if not active:
            self.problem = f"the registry lists no active endpoint ({len(inactive)} inactive)"
            if self._from_cache:
                # The registry is authoritative: endpoints only the disk cache knew go.
                log.info(
                    "registry %s lists no active endpoint of %s: dropping %d cached endpoints",
                    self.locator.name,
                    name,
                    len(self._active),
                    extra=self._log_extra,
                )
                self._from_cache = False
                self._apply((), inactive)
                return schedule.active_empty_interval
            # C++: an empty active list is never applied; keep the old one, ask again soon.
            self._warn(
                "registry %s lists no active endpoint of %s; keeping %d known",
                self.locator.name,
                name,
                len(self._active),
            )
            return schedule.active_empty_interval
        self.problem = ""
        self._from_cache = False
        self._apply(active, inactive)
        self.locator.remember(name, active, inactive)
        return schedule.refresh_interval

    def _failed(self, why: str) -> float:
        self.failures += 1
        schedule = self.locator.schedule
        many = self.failures > schedule.fail_times_limit
        if not self.obj.selector:
            cached = self.locator.cached(self.obj.name, reload=True)
            if cached is not None and cached.active:
                self._use_cache(cached)
        self.problem = why
        self._warn(
            "cannot resolve %s through %s (%d failed in a row; %s): %s",
            self.obj.name,
            self.locator.name,
            self.failures,
            f"calls go on to {len(self._active)} known endpoints"
            if self._active
            else "no endpoint known",
            why,
        )
        return schedule.many_fail_interval if many else schedule.fail_interval

    def _convert(self, endpointfs: Sequence[EndpointF]) -> list[Endpoint]:
        out: list[Endpoint] = []
        for ef in endpointfs:
            try:
                out.append(Endpoint.from_endpointf(ef))
            except EndpointError as e:
                self._warn("registry %s sent an unusable endpoint: %s", self.locator.name, e)
        return out

    def _apply(self, active: Sequence[Endpoint], inactive: Sequence[Endpoint]) -> None:
        new_active, new_inactive = frozenset(active), frozenset(inactive)
        if new_active == self._active and new_inactive == self._inactive:
            return
        log.info(
            "endpoints of %s: %d active, %d inactive (were %d, %d)",
            self.obj.name,
            len(new_active),
            len(new_inactive),
            len(self._active),
            len(self._inactive),
            extra=self._log_extra,
        )
        self._active, self._inactive = new_active, new_inactive
        self.obj.set_endpoints(list(active), list(inactive))

    def _use_cache(self, cached: CachedEndpoints) -> None:
        if not cached.active:
            return
        log.info(
            "using cached endpoints of %s (%d active, saved %s) from %s",
            self.obj.name,
            len(cached.active),
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(cached.saved)),
            self.locator.cache.path if self.locator.cache else "?",
            extra=self._log_extra,
        )
        self._from_cache = True
        self._apply(cached.active, cached.inactive)

    def _warn(self, msg: str, *args: Any) -> None:
        """Log a problem of this object at most once per :data:`LOG_INTERVAL`."""
        now = time.monotonic()
        if now >= self._next_log:
            self._next_log = now + LOG_INTERVAL
            log.warning(msg, *args, extra=self._log_extra)
        else:
            log.debug(msg, *args, extra=self._log_extra)


class RegistryObjectProxy(ObjectProxy):
    """An ``ObjectProxy`` for a bare name: its endpoints come from the locator.

    Calls are the plain ``ObjectProxy`` calls, except that a call finding no active endpoint
    first waits (within its timeout) for the registry's answer, and a call whose every
    endpoint refuses the connection waits for a newer answer and tries again once
    (:meth:`EndpointManager.endpoints_refused`).
    """

    def __init__(self, name: str, locator: Locator, **options: Any) -> None:
        super().__init__(name, (), direct=False, **options)
        self.manager = EndpointManager(self, locator)

    def ready(self) -> bool:
        return bool(self.selector) and self.manager.started

    async def wait_ready(self, options: CallOptions) -> CallOptions:
        left = await self.manager.wait_for_endpoints(options.timeout_ms or self.timeout_ms)
        return dataclasses.replace(options, timeout_ms=left)

    async def every_endpoint_refused(self, deadline: float) -> bool:
        return await self.manager.endpoints_refused(deadline)
