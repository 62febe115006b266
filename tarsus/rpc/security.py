"""What a config says about securing one servant: its access keys and its TLS files.

The same keys sit in a server's adapter domain (``<App.Server.HelloObjAdapter>``: the keys the
adapter accepts, its certificate) and in a client's object domain
(``<tars><application><client><App.Server.HelloObj>``: the keys it signs with, the CA it
checks the server with), as in TarsCpp (docs/security.md):

    accesskey = ...        secretkey = ...                      (endpoint -e 1: tarsus.rpc.auth)
    ca = ...  cert = ...  key = ...  verifyclient = 0|1  ciphers = ...   (ssl endpoints: tls)
"""

from __future__ import annotations

import functools
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tarsus.rpc.auth import Credentials, ServerAuth
from tarsus.rpc.tls import TlsConfig, TlsConfigError

if TYPE_CHECKING:
    from tarsus.rpc.endpoint import Endpoint

__all__ = [
    "CLIENT_KEYS_ENV",
    "DEFAULT_CLIENT_KEYS",
    "SECURITY_KEYS",
    "ServantSecurity",
    "client_keys_from_env",
    "client_ssl",
    "load_client_keys",
    "server_security",
]

#: The file of client keys ``tarsus install framework`` writes for the CLI and the web app.
DEFAULT_CLIENT_KEYS = Path("/etc/tarsus/client.conf")
#: ... or the one this names.
CLIENT_KEYS_ENV = "TARSUS_CLIENT_KEYS"
_CLIENT_DOMAIN = "/tars/application/client"

#: The config keys read here.
SECURITY_KEYS = ("accesskey", "secretkey", "ca", "cert", "key", "verifyclient", "ciphers")


@dataclass(frozen=True)
class ServantSecurity:
    """Keys and TLS files of one servant; ``None`` parts are not configured."""

    credentials: Credentials | None = None
    tls: TlsConfig | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, str], where: str) -> ServantSecurity | None:
        """Read the keys of one config domain; None when it names none. ValueError (naming
        *where*) when they cannot be used."""
        get = {k: params.get(k, "").strip() for k in SECURITY_KEYS}
        credentials = None
        if get["accesskey"] or get["secretkey"]:
            if not (get["accesskey"] and get["secretkey"]):
                raise ValueError(f"{where}: accesskey and secretkey go together")
            credentials = Credentials(get["accesskey"], get["secretkey"])
        tls = None
        if any(get[k] for k in ("ca", "cert", "key", "ciphers")):
            verify = get["verifyclient"] or "0"
            if verify not in ("0", "1"):
                raise ValueError(f"{where}: verifyclient must be 0 or 1, not {verify!r}")
            tls = TlsConfig(get["ca"], get["cert"], get["key"], verify == "1", get["ciphers"])
        if credentials is None and tls is None:
            return None
        return cls(credentials, tls)

    @functools.cached_property
    def client_ssl(self) -> ssl.SSLContext:
        """The client's TLS context (made once; TarsCpp's default when no file is named)."""
        return (self.tls or TlsConfig()).client_context()


def client_ssl(security: ServantSecurity | None, where: str) -> ssl.SSLContext:
    """The TLS context a client uses for an ``ssl`` endpoint of a servant."""
    if security is None:
        return _default_client_ssl()
    try:
        return security.client_ssl
    except TlsConfigError as e:
        raise TlsConfigError(f"{where}: {e}") from None


@functools.cache
def _default_client_ssl() -> ssl.SSLContext:
    return TlsConfig().client_context("ssl endpoints without a client ca")


def server_security(
    endpoint: Endpoint, security: ServantSecurity | None, servant_name: str, adapter_name: str
) -> tuple[ServerAuth | None, ssl.SSLContext | None]:
    """What an adapter on *endpoint* needs: the handshake gate (``-e 1``) and the TLS context
    (``ssl``). Missing keys for either are a configuration error, raised at once: an endpoint
    that asks for auth or TLS never serves without it."""
    auth = None
    if endpoint.auth_type:
        if security is None or security.credentials is None:
            raise ValueError(
                f"{adapter_name}: endpoint {endpoint} has -e 1 and needs accesskey and secretkey"
            )
        auth = ServerAuth.for_credentials(servant_name, security.credentials, adapter_name)
    context = None
    if endpoint.protocol == "ssl":
        if security is None or security.tls is None:
            raise TlsConfigError(f"{adapter_name}: ssl endpoint {endpoint} needs cert and key")
        context = security.tls.server_context(adapter_name)
    return auth, context


def load_client_keys(path: str | os.PathLike[str]) -> dict[str, ServantSecurity]:
    """Object name -> keys, from the ``<tars><application><client><Obj>`` domains of a config
    file (a server's, or the ``client.conf`` an install writes). ValueError naming the file
    when it cannot be read or its keys cannot be used."""
    from tarsus.conf import ConfigError, parse_file

    where = os.fspath(path)
    try:
        tc = parse_file(path)
    except OSError as e:
        raise ValueError(f"client keys {where}: {e.strerror or e}") from None
    except ConfigError as e:  # its message names the file and the line
        raise ValueError(
            f"client keys {e}" if where in str(e) else f"client keys {where}: {e}"
        ) from None
    found = {}
    for name in tc.domains(_CLIENT_DOMAIN):
        where = f"{os.fspath(path)}: {_CLIENT_DOMAIN}/{name}"
        security = ServantSecurity.from_params(tc.params(f"{_CLIENT_DOMAIN}/{name}"), where)
        if security is not None:
            found[name] = security
    return found


def client_keys_from_env() -> dict[str, ServantSecurity]:
    """The keys a command-line client signs with: the file ``$TARSUS_CLIENT_KEYS`` names
    (an error when it cannot be read), else ``/etc/tarsus/client.conf`` when this user can
    read it, else none (docs/security.md, "The CLI and the web app")."""
    named = os.environ.get(CLIENT_KEYS_ENV, "").strip()
    if named:
        return load_client_keys(named)
    if os.access(DEFAULT_CLIENT_KEYS, os.R_OK):
        return load_client_keys(DEFAULT_CLIENT_KEYS)
    return {}
