"""The framework's keys: a private CA, a server and a client certificate, and a Tars access key.

Files (under ``/etc/tarsus``, docs/install.md "Keys and certificates"), private keys mode 0600:

* ``tls/ca.crt`` / ``tls/ca.key`` — the install's own certificate authority;
* ``tls/server.crt`` / ``tls/server.key`` — for the framework's ``ssl -h ... -p ...``
  endpoints (TarsCpp/TarsGo TLS), valid for the framework host's address, ``localhost`` and
  ``127.0.0.1``;
* ``tls/client.crt`` / ``tls/client.key`` — for clients and nodes where client certificates
  are checked;
* ``auth/accesskey`` / ``auth/secretkey`` — the pair of TarsCpp's ``AuthF`` handshake
  (``accesskey``/``secretkey`` of an object's client config).

Each is made once: a re-run keeps what exists, so nothing already handed out stops working.
The server certificate is made again when the framework's address is not among its names.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tarsus.install.settings import write_private

__all__ = ["FrameworkKeys", "ensure_keys", "ensure_pair", "read_pair"]

CA_DAYS = 3650
LEAF_DAYS = 825


@dataclass(frozen=True)
class FrameworkKeys:
    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    accesskey: Path
    secretkey: Path
    #: files written by this run
    made: tuple[Path, ...]


def _pem_key(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _pem_cert(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _alt_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    *,
    names: list[str] | None = None,
    usage: x509.ObjectIdentifier | None = None,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, signer = (ca[0].subject, ca[1]) if ca else (name, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=LEAF_DAYS if ca else CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=ca is None, path_length=None), critical=True)
    )
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_alt_name(n) for n in names]), critical=False
        )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(signer, hashes.SHA256())


def _names_of(path: Path) -> set[str]:
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return set()
    return {str(v) for v in alt.get_values_for_type(x509.IPAddress)} | set(
        alt.get_values_for_type(x509.DNSName)
    )


def ensure_pair(access: Path, secret: Path, prefix: str) -> bool:
    """A Tars access key pair in two files (mode 0600), made unless both exist; True when
    made. The access key is ``<prefix>-<16 hex>``, the secret 32 random bytes."""
    if access.is_file() and secret.is_file():
        return False
    write_private(access, f"{prefix}-{secrets.token_hex(8)}\n")
    write_private(secret, secrets.token_urlsafe(32) + "\n")
    return True


def read_pair(access: Path, secret: Path) -> tuple[str, str]:
    """The pair :func:`ensure_pair` wrote."""
    return access.read_text().strip(), secret.read_text().strip()


def ensure_keys(tls_dir: Path, auth_dir: Path, host: str) -> FrameworkKeys:
    """Make what is missing (see the module docstring); returns where everything is."""
    made: list[Path] = []
    ca_new = False
    ca_crt, ca_key_file = tls_dir / "ca.crt", tls_dir / "ca.key"
    if ca_crt.is_file() and ca_key_file.is_file():
        ca_cert = x509.load_pem_x509_certificate(ca_crt.read_bytes())
        loaded = serialization.load_pem_private_key(ca_key_file.read_bytes(), password=None)
        assert isinstance(loaded, ec.EllipticCurvePrivateKey)
        ca_key = loaded
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = _issue("Tarsus framework CA", ca_key, None)
        write_private(ca_key_file, _pem_key(ca_key))
        write_private(ca_crt, _pem_cert(ca_cert), 0o644)
        made += [ca_key_file, ca_crt]
        ca_new = True
    names = sorted({host, "localhost", "127.0.0.1"})
    leaves: tuple[tuple[str, str, list[str], x509.ObjectIdentifier], ...] = (
        ("server", "Tarsus framework", names, ExtendedKeyUsageOID.SERVER_AUTH),
        ("client", "Tarsus client", [], ExtendedKeyUsageOID.CLIENT_AUTH),
    )
    for stem, subject, alt, usage in leaves:
        crt, key_file = tls_dir / f"{stem}.crt", tls_dir / f"{stem}.key"
        fresh = not ca_new and crt.is_file() and key_file.is_file()
        if fresh and alt and not set(alt) <= _names_of(crt):
            fresh = False
        if fresh:
            continue
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _issue(subject, key, (ca_cert, ca_key), names=alt, usage=usage)
        write_private(key_file, _pem_key(key))
        write_private(crt, _pem_cert(cert), 0o644)
        made += [key_file, crt]
    access, secret = auth_dir / "accesskey", auth_dir / "secretkey"
    if ensure_pair(access, secret, "tarsus"):
        made += [access, secret]
    return FrameworkKeys(
        ca_cert=ca_crt,
        server_cert=tls_dir / "server.crt",
        server_key=tls_dir / "server.key",
        client_cert=tls_dir / "client.crt",
        client_key=tls_dir / "client.key",
        accesskey=access,
        secretkey=secret,
        made=tuple(made),
    )
