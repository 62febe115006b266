"""TLS for ``ssl -h ... -p ...`` endpoints, with the keys TarsCpp reads for them.

A server adapter or a client object domain may name ``ca``, ``cert``, ``key``, ``verifyclient``
and ``ciphers`` (TarsCpp ``Application::setAdapter`` and ``Communicator::setProperty``, which
hand them to ``TC_OpenSSL::newCtx``). The same rules hold here, on Python's ``ssl`` module:

- a server needs ``cert`` and ``key``; with ``ca`` it asks clients for a certificate and checks
  one given against ``ca``; with ``verifyclient = 1`` a client without a valid one is refused;
- a client with ``ca`` checks the server's certificate chain against it (not the host name: an
  endpoint is an address the registry hands out, as upstream); without ``ca`` it encrypts but
  does not check who answers (as upstream; logged); ``cert``/``key`` are its own certificate,
  for servers that check clients;
- ``ciphers`` is an OpenSSL cipher list.
"""

from __future__ import annotations

import logging
import os
import ssl
from dataclasses import dataclass

__all__ = ["TlsConfig", "TlsConfigError"]

log = logging.getLogger("tarsus.rpc.tls")


class TlsConfigError(ValueError):
    """A TLS setting that cannot be used (names the file or the key)."""


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """The TLS keys of one adapter or one client object: paths to PEM files."""

    ca: str = ""
    cert: str = ""
    key: str = ""
    verify_client: bool = False
    ciphers: str = ""

    def server_context(self, where: str = "adapter") -> ssl.SSLContext:
        if not self.cert or not self.key:
            raise TlsConfigError(f"{where}: an ssl endpoint needs cert and key (PEM files)")
        if self.verify_client and not self.ca:
            raise TlsConfigError(f"{where}: verifyclient = 1 needs ca (to check clients with)")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._load(ctx, where)
        if self.ca:
            ctx.verify_mode = ssl.CERT_REQUIRED if self.verify_client else ssl.CERT_OPTIONAL
        return ctx

    def client_context(self, where: str = "client") -> ssl.SSLContext:
        if bool(self.cert) != bool(self.key):
            raise TlsConfigError(f"{where}: cert and key go together")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        if self.ca:
            ctx.verify_mode = ssl.CERT_REQUIRED
        else:
            ctx.verify_mode = ssl.CERT_NONE
            log.warning("%s: no ca configured: the server's certificate is not checked", where)
        self._load(ctx, where)
        return ctx

    def _load(self, ctx: ssl.SSLContext, where: str) -> None:
        try:
            if self.cert:
                ctx.load_cert_chain(self.cert, self.key)
            if self.ca:
                ctx.load_verify_locations(cafile=self.ca)
        except FileNotFoundError as e:
            # load_verify_locations does not say which file (filename None)
            missing = e.filename or next(
                (f for f in (self.cert, self.key, self.ca) if f and not os.path.exists(f)), "?"
            )
            raise TlsConfigError(f"{where}: {missing}: no such file") from None
        except (ssl.SSLError, OSError) as e:
            files = ", ".join(f for f in (self.cert, self.key, self.ca) if f)
            raise TlsConfigError(f"{where}: cannot load {files}: {e}") from None
        if self.ciphers:
            try:
                ctx.set_ciphers(self.ciphers)
            except ssl.SSLError as e:
                raise TlsConfigError(f"{where}: ciphers {self.ciphers!r}: {e}") from None
