"""Which framework objects a secured install serves with ``-e 1``, and the config that says so.

An install that listens beyond loopback (``tarsus install framework --host 10.0.0.1``) gives
the framework one access key pair (``/etc/tarsus/auth``; docs/security.md, "Keys for the
framework's own objects") and serves the objects that *operate* the platform only to holders
of it: TarsCpp's ``-e 1`` on their endpoints, ``accesskey``/``secretkey`` in their adapter
domains (TarsCpp ``Application::setAdapter``), and the same pair in the ``<client>`` domains of
every framework service and node that calls them.

Secured (:data:`SECURED_OBJECTS`): ``AdminRegObj`` (with ``AdminExt``: deploy, start, stop,
publish, the node push channel), ``RegistryObj`` (node registration and server states),
``PatchObj`` (with ``PatchExt``: the package store), ``AlarmObj`` (``AlertExt``: alert
rules), ``ConfigExtObj`` (``ConfigExt``: editing config files) and ``LogExtObj`` (``LogExt``:
reading remote logs). Their callers are the framework's own services, its nodes, the CLI and
the web app, which all hold the keys.

Left open, as upstream leaves them: ``QueryObj`` (every client's lookups, also TarsCpp/TarsGo
ones that were never given keys), the report objects business servers send to (``StatObj``,
``PropertyObj``, ``NotifyObj``, ``LogObj``), ``ConfigObj`` (every server loads its config files
from it at start) and the read-only stat queries. What a caller can do with them is in
docs/security.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tarsus.codec.constants import (
    ADMIN_REG_OBJ,
    ALARM_OBJ,
    CONFIG_EXT_OBJ,
    LOG_EXT_OBJ,
    PATCH_OBJ,
    REGISTRY_OBJ,
)
from tarsus.rpc.auth import Credentials
from tarsus.rpc.security import ServantSecurity
from tarsus.rpc.tls import TlsConfig

__all__ = ["SECURED_OBJECTS", "FrameworkAuth"]

#: The framework objects a secured install serves with ``-e 1`` (the module docstring).
SECURED_OBJECTS: tuple[str, ...] = (
    ADMIN_REG_OBJ,
    REGISTRY_OBJ,
    PATCH_OBJ,
    ALARM_OBJ,
    CONFIG_EXT_OBJ,
    LOG_EXT_OBJ,
)


@dataclass(frozen=True)
class FrameworkAuth:
    """The framework's access key pair and the objects it guards."""

    credentials: Credentials
    objects: tuple[str, ...] = SECURED_OBJECTS
    #: ``tarsus install framework --tls``: the guarded objects are also served on ``ssl``
    #: endpoints with this certificate and key; clients check it against ``ca``
    tls: TlsConfig | None = None

    def secures(self, servant: str) -> bool:
        return servant in self.objects

    def endpoint(self, servant: str, endpoint: str) -> str:
        """``endpoint`` (``tcp -h ...``) as a guarded ``servant`` is served: ``-e 1``, and
        ``ssl`` with :attr:`tls`."""
        if not self.secures(servant):
            return endpoint
        if self.tls is not None and endpoint.startswith("tcp "):
            endpoint = "ssl " + endpoint[4:]
        return f"{endpoint} -e 1"

    def client_security(self) -> dict[str, ServantSecurity]:
        """Object name -> the keys a client signs with (``Communicator(security=...)``)."""
        tls = TlsConfig(ca=self.tls.ca) if self.tls is not None else None
        security = ServantSecurity(self.credentials, tls)
        return dict.fromkeys(self.objects, security)

    def _keys(self, indent: str) -> list[str]:
        return [
            f"{indent}accesskey = {self.credentials.access_key}",
            f"{indent}secretkey = {self.credentials.secret_key}",
        ]

    def _server_tls(self, indent: str) -> list[str]:
        if self.tls is None:
            return []
        return [f"{indent}cert = {self.tls.cert}", f"{indent}key = {self.tls.key}"]

    def _client_tls(self, indent: str) -> list[str]:
        return [] if self.tls is None else [f"{indent}ca = {self.tls.ca}"]

    def adapter_domains(self, servants: Iterable[str], indent: str = "      ") -> list[str]:
        """The ``<ServantAdapter>`` domains (to go under ``/tars/application/server``) with the
        keys of the secured ones among ``servants``."""
        lines = []
        for servant in servants:
            if self.secures(servant):
                lines += [
                    f"{indent}<{servant}Adapter>",
                    *self._keys(indent + "  "),
                    *self._server_tls(indent + "  "),
                    f"{indent}</{servant}Adapter>",
                ]
        return lines

    def client_domains(self, indent: str = "      ") -> list[str]:
        """One ``<Object>`` domain per secured object (to go under
        ``/tars/application/client``), holding the keys."""
        lines = []
        for obj in self.objects:
            lines += [
                f"{indent}<{obj}>",
                *self._keys(indent + "  "),
                *self._client_tls(indent + "  "),
                f"{indent}</{obj}>",
            ]
        return lines

    def client_config(self) -> str:
        """A config file with only the client domains: what the CLI and the web app read
        (``/etc/tarsus/client.conf``; :func:`tarsus.rpc.security.load_client_keys`)."""
        return "\n".join(
            [
                "<tars>",
                "  <application>",
                "    <client>",
                *self.client_domains(),
                "    </client>",
                "  </application>",
                "</tars>",
                "",
            ]
        )
