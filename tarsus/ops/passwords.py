"""Password hashing: scrypt (:func:`hashlib.scrypt`, RFC 7914) with a random salt per user.

Stored as ``scrypt$N$r$p$<salt b64>$<hash b64>``, so the cost can be raised later and old
hashes still verify. Upstream stored unsalted SHA-1 (TarsWeb ``sso``), and its first-run page
hashed the password twice (TarsWeb#141); here the server hashes once, from the plain text sent
over the (TLS-terminated) connection.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets

from tarsus.ops.errors import Invalid

__all__ = [
    "MAX_PASSWORD",
    "MIN_PASSWORD",
    "check_new_password",
    "generate",
    "hash_password",
    "verify",
]

MIN_PASSWORD = 10
#: characters; scrypt's cost does not grow with the length, but a megabyte body is refused
MAX_PASSWORD = 1024
_N, _R, _P = 1 << 14, 8, 1


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _hash(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024, dklen=32
    )


def check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise Invalid(f"the password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise Invalid(f"the password may have at most {MAX_PASSWORD} characters")


async def hash_password(password: str) -> str:
    """The stored form (computed off the event loop: it takes tens of milliseconds)."""
    salt = secrets.token_bytes(16)
    digest = await asyncio.to_thread(_hash, password, salt, _N, _R, _P)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


async def verify(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (False for a malformed one)."""
    if len(password) > MAX_PASSWORD:
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt" or int(n) > (1 << 20) or int(r) > 32 or int(p) > 16:
            return False
        expected = base64.b64decode(digest)
        got = await asyncio.to_thread(
            _hash, password, base64.b64decode(salt), int(n), int(r), int(p)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


def generate() -> str:
    """A password for the first ``admin`` (shown once): 20 URL-safe characters."""
    return secrets.token_urlsafe(15)
