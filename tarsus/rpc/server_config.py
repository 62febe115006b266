"""What a Tars server reads from the config file its node writes (``--config=FILE``).

``ServerConfig.load`` reads ``<tars><application><server>`` (app, server, the adapter domains,
``local``, ``node``, paths, logs, ``deactivating-timeout``...) and ``<client>`` (locator,
timeouts, stat...) as TarsCpp's ``Application::initializeServer``/``initializeClient`` do, and
fails with a :class:`ServerConfigError` naming the key and the file (docs/rpc-server.md).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from tarsus.conf import ConfigError, TCConfig, parse, parse_file
from tarsus.rpc import logs
from tarsus.rpc.endpoint import Endpoint, EndpointError, parse_proxy
from tarsus.rpc.security import ServantSecurity

__all__ = [
    "CLIENT_DOMAIN",
    "SERVER_DOMAIN",
    "AdapterConfig",
    "ClientConfig",
    "ServerConfig",
    "ServerConfigError",
]

SERVER_DOMAIN = "/tars/application/server"
CLIENT_DOMAIN = "/tars/application/client"
#: Adapter limits when the config leaves them out (TarsCpp ``Application::createAdapter``).
DEFAULT_MAX_CONNS = 128
DEFAULT_QUEUE_CAP = 1024
DEFAULT_QUEUE_TIMEOUT_MS = 10000
#: TarsCpp raises a shorter queuetimeout to this.
MIN_QUEUE_TIMEOUT_MS = 3000
#: ms tarsnode waits for a stopping server before it kills it (template value).
DEFAULT_DEACTIVATING_TIMEOUT_MS = 3000


class ServerConfigError(ConfigError):
    """The server config cannot be used: names the key (or servant) and the file."""


@dataclass(frozen=True)
class AdapterConfig:
    """One ``<App.Server.XxxAdapter>`` domain."""

    name: str
    servant: str
    endpoint: Endpoint
    max_conns: int = DEFAULT_MAX_CONNS
    queue_cap: int = DEFAULT_QUEUE_CAP
    queue_timeout_ms: int = DEFAULT_QUEUE_TIMEOUT_MS
    protocol: str = "tars"
    #: read and shown, not used: calls run on the event loop
    threads: int = 1
    order: str = "allow,deny"
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    #: accesskey/secretkey (``-e 1``) and ca/cert/key/verifyclient/ciphers (``ssl``)
    security: ServantSecurity | None = None


@dataclass(frozen=True)
class ClientConfig:
    """``<tars><application><client>``: the settings of this server's own calls."""

    locator: str = ""
    sync_invoke_timeout: int = 3000
    async_invoke_timeout: int = 5000
    refresh_endpoint_interval: int = 60000
    stat: str = ""
    property: str = ""
    report_interval: int = 60000
    modulename: str = ""
    #: every key of the domain as written, for ``tars.viewstatus``
    params: Mapping[str, str] = field(default_factory=dict)
    #: ``<App.Server.Obj>`` domains: the keys and TLS files of calls to that object
    objects: Mapping[str, ServantSecurity] = field(default_factory=dict)


@dataclass(frozen=True)
class ServerConfig:
    """What a Tars server reads from the config file its node writes (docs/rpc-server.md)."""

    app: str
    server: str
    adapters: tuple[AdapterConfig, ...] = ()
    client: ClientConfig = field(default_factory=ClientConfig)
    localip: str = ""
    nodename: str = ""
    #: the admin endpoint (``local``), None when the server has no AdminObj
    local: Endpoint | None = None
    #: the node's ServerObj (``tars.tarsnode.ServerObj@tcp -h ...``), "" when not under a node
    node: str = ""
    basepath: str = "."
    datapath: str = "."
    logpath: str = ""
    logsize: int = logs.DEFAULT_LOG_SIZE
    lognum: int = logs.DEFAULT_LOG_NUM
    log_level: str = "DEBUG"
    config: str = ""
    notify: str = ""
    log: str = ""
    deactivating_timeout_ms: int = DEFAULT_DEACTIVATING_TIMEOUT_MS
    #: keepAlive period (TarsGo's ``mainloopticker``, ms)
    heartbeat_interval_ms: int = 10000
    enableset: bool = False
    setdivision: str = ""
    #: the file the config came from ("<text>" when given as text)
    source: str = "<text>"
    #: every key of ``<server>`` as written, for ``tars.viewstatus``
    params: Mapping[str, str] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return f"{self.app}.{self.server}"

    def adapter_for(self, servant: str) -> AdapterConfig | None:
        return next((a for a in self.adapters if a.servant == servant), None)

    @classmethod
    def load(cls, source: str | os.PathLike[str] | TCConfig) -> ServerConfig:
        """Read a config file, config text (anything containing ``<``) or a parsed config."""
        if isinstance(source, TCConfig):
            return cls.from_tcconfig(source)
        if isinstance(source, str) and "<" in source:
            return cls.from_tcconfig(parse(source, source="<text>"))
        path = os.fspath(source)
        try:
            tc = parse_file(path)
        except OSError as e:
            raise ServerConfigError(f"cannot read the config: {e.strerror}", source=path) from e
        return cls.from_tcconfig(tc, source=path)

    @classmethod
    def from_tcconfig(cls, tc: TCConfig, *, source: str = "<text>") -> ServerConfig:
        reader = _Reader(tc, source)
        app = reader.required(f"{SERVER_DOMAIN}<app>")
        server = reader.required(f"{SERVER_DOMAIN}<server>")
        localip = tc.get(f"{SERVER_DOMAIN}<localip>")
        prefix = f"{app}.{server}."
        adapters = []
        for name in tc.domains(SERVER_DOMAIN):
            path = f"{SERVER_DOMAIN}/{name}"
            servant = reader.required(f"{path}<servant>")
            if not servant.startswith(prefix) or len(servant) <= len(prefix):
                raise ServerConfigError(
                    f"servant {servant!r} of adapter {name} must start with {prefix!r}",
                    source=source,
                )
            endpoint = reader.endpoint(f"{path}<endpoint>", localip, required=True)
            assert endpoint is not None
            security = reader.security(path)
            if endpoint.auth_type and (security is None or security.credentials is None):
                reader.fail(f"{path}: endpoint {endpoint} has -e 1: set accesskey and secretkey")
            if endpoint.protocol == "ssl" and (security is None or security.tls is None):
                reader.fail(f"{path}: ssl endpoint {endpoint}: set cert and key")
            adapters.append(
                AdapterConfig(
                    name=name,
                    servant=servant,
                    endpoint=endpoint,
                    max_conns=reader.integer(f"{path}<maxconns>", DEFAULT_MAX_CONNS),
                    queue_cap=reader.integer(f"{path}<queuecap>", DEFAULT_QUEUE_CAP),
                    queue_timeout_ms=max(
                        MIN_QUEUE_TIMEOUT_MS,
                        reader.integer(f"{path}<queuetimeout>", DEFAULT_QUEUE_TIMEOUT_MS),
                    ),
                    protocol=tc.get(f"{path}<protocol>") or "tars",
                    threads=reader.integer(f"{path}<threads>", 1),
                    order=tc.get(f"{path}<order>") or "allow,deny",
                    allow=_split_list(tc.get(f"{path}<allow>")),
                    deny=_split_list(tc.get(f"{path}<deny>")),
                    security=security,
                )
            )
        servants = [a.servant for a in adapters]
        for servant in servants:
            if servants.count(servant) > 1:
                raise ServerConfigError(
                    f"servant {servant!r} is named by more than one adapter", source=source
                )
        node = tc.get(f"{SERVER_DOMAIN}<node>")
        if node:
            reader.proxy(f"{SERVER_DOMAIN}<node>")
        locator = tc.get(f"{CLIENT_DOMAIN}<locator>")
        if locator and not reader.proxy(f"{CLIENT_DOMAIN}<locator>").direct:
            raise ServerConfigError(
                f"{CLIENT_DOMAIN}<locator> = {locator!r} must name the registry's endpoints "
                "(tars.tarsregistry.QueryObj@tcp -h ... -p ...)",
                source=source,
            )
        client = ClientConfig(
            locator=locator,
            sync_invoke_timeout=reader.integer(f"{CLIENT_DOMAIN}<sync-invoke-timeout>", 3000),
            async_invoke_timeout=reader.integer(f"{CLIENT_DOMAIN}<async-invoke-timeout>", 5000),
            refresh_endpoint_interval=reader.integer(
                f"{CLIENT_DOMAIN}<refresh-endpoint-interval>", 60000
            ),
            stat=tc.get(f"{CLIENT_DOMAIN}<stat>"),
            property=tc.get(f"{CLIENT_DOMAIN}<property>"),
            report_interval=reader.integer(f"{CLIENT_DOMAIN}<report-interval>", 60000),
            modulename=tc.get(f"{CLIENT_DOMAIN}<modulename>") or f"{app}.{server}",
            params=tc.params(CLIENT_DOMAIN),
            objects={
                name: security
                for name in tc.domains(CLIENT_DOMAIN)
                if (security := reader.security(f"{CLIENT_DOMAIN}/{name}")) is not None
            },
        )
        log_level = tc.get(f"{SERVER_DOMAIN}<logLevel>") or "DEBUG"
        try:
            logs.parse_level(log_level)
        except ValueError as e:
            raise ServerConfigError(f"{SERVER_DOMAIN}<logLevel>: {e}", source=source) from None
        enableset = tc.get("/tars/application<enableset>").strip().lower() == "y"
        return cls(
            app=app,
            server=server,
            adapters=tuple(adapters),
            client=client,
            localip=localip,
            nodename=tc.get(f"{SERVER_DOMAIN}<nodename>") or localip,
            local=reader.endpoint(f"{SERVER_DOMAIN}<local>", localip),
            node=node,
            basepath=tc.get(f"{SERVER_DOMAIN}<basepath>") or ".",
            datapath=tc.get(f"{SERVER_DOMAIN}<datapath>") or ".",
            logpath=tc.get(f"{SERVER_DOMAIN}<logpath>"),
            logsize=reader.size(f"{SERVER_DOMAIN}<logsize>", logs.DEFAULT_LOG_SIZE),
            lognum=max(1, reader.integer(f"{SERVER_DOMAIN}<lognum>", logs.DEFAULT_LOG_NUM)),
            log_level=log_level.upper(),
            config=tc.get(f"{SERVER_DOMAIN}<config>"),
            notify=tc.get(f"{SERVER_DOMAIN}<notify>"),
            log=tc.get(f"{SERVER_DOMAIN}<log>"),
            deactivating_timeout_ms=reader.integer(
                f"{SERVER_DOMAIN}<deactivating-timeout>", DEFAULT_DEACTIVATING_TIMEOUT_MS
            ),
            heartbeat_interval_ms=max(1, reader.integer(f"{SERVER_DOMAIN}<mainloopticker>", 10000)),
            enableset=enableset,
            setdivision=tc.get("/tars/application<setdivision>") if enableset else "",
            source=source,
            params=tc.params(SERVER_DOMAIN),
        )


def _split_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.replace(";", ",").split(",") if part.strip())


class _Reader:
    """Typed reads from a TCConfig whose errors name the key and the file."""

    def __init__(self, tc: TCConfig, source: str) -> None:
        self.tc = tc
        self.source = source

    def fail(self, message: str) -> NoReturn:
        raise ServerConfigError(message, source=self.source)

    def required(self, path: str) -> str:
        value = self.tc.get(path).strip()
        if not value:
            self.fail(f"{path} is missing (a Tars node always writes it)")
        return value

    def integer(self, path: str, default: int) -> int:
        text = self.tc.get(path).strip()
        if not text:
            return default
        try:
            return int(text)
        except ValueError:
            self.fail(f"{path} = {text!r} is not a whole number")

    def size(self, path: str, default: int) -> int:
        text = self.tc.get(path).strip()
        if not text:
            return default
        try:
            return logs.parse_size(text)
        except ValueError as e:
            self.fail(f"{path}: {e}")

    def endpoint(self, path: str, localip: str, *, required: bool = False) -> Endpoint | None:
        text = self.required(path) if required else self.tc.get(path).strip()
        if not text:
            return None
        try:
            endpoint = Endpoint.parse(text)
        except EndpointError as e:
            self.fail(f"{path}: {e}")
        if endpoint.host == "localip" and localip:  # as TarsCpp
            endpoint = dataclasses.replace(endpoint, host=localip)
        return endpoint

    def security(self, path: str) -> ServantSecurity | None:
        try:
            return ServantSecurity.from_params(self.tc.params(path), path)
        except ValueError as e:
            self.fail(str(e))

    def proxy(self, path: str) -> Any:
        try:
            return parse_proxy(self.tc.get(path))
        except EndpointError as e:
            self.fail(f"{path}: {e}")
