"""The token that authenticates scripts until the console's users and tokens exist.

The framework host generates it once, at the first start of ``tarsus up`` / ``tarsus web``
(or at ``tarsus web token``): 32 random bytes, URL-safe base64, in ``<data-dir>/web/token``
with mode 0600. Scripts pass it as upstream's ``?ticket=`` (TarsWeb ``dev/tars-web-api.md``)
or as ``Authorization: Bearer``. ``tarsus web token --rotate`` writes a new one; a running app
notices the file changed at the next request. The comparison takes the same time whatever
the candidate (:func:`hmac.compare_digest`).
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
from pathlib import Path

__all__ = ["TokenError", "TokenFile", "check_given_token", "ensure_token", "write_new_token"]

_BYTES = 32
_MAX_LEN = 512


class TokenError(Exception):
    """The token file cannot be made or read; the message says where and why."""


def _read(path: Path) -> str:
    try:
        st = path.lstat()
        if not path.is_file() or path.is_symlink():
            raise TokenError(f"{path} is not a regular file")
        if st.st_mode & 0o077:
            os.chmod(path, 0o600)  # a copy made readable by others is tightened, not trusted less
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise TokenError(f"cannot read the token file {path}: {e}") from None
    if not text or len(text) > _MAX_LEN or not text.isprintable() or " " in text:
        raise TokenError(f"the token file {path} holds no usable token; rotate it")
    return text


def _write(path: Path, token: str, *, replace: bool) -> None:
    """``token`` into ``path`` with mode 0600: a new file (``O_EXCL``), or atomically over the
    old one when ``replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    target = path.with_name(path.name + ".new") if replace else path
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(token + "\n")
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(target, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(target)
        raise


def ensure_token(path: Path) -> str:
    """The token in ``path``, generated now if there is none. :class:`TokenError` if the file
    cannot be made or holds no usable token."""
    if not path.exists() and not path.is_symlink():
        try:
            _write(path, secrets.token_urlsafe(_BYTES), replace=False)
        except FileExistsError:
            pass  # another process made it first: read theirs
        except OSError as e:
            raise TokenError(f"cannot create the token file {path}: {e}") from None
    return _read(path)


#: the shortest token an operator may give (``tarsus install framework --join-token``)
MIN_GIVEN_LEN = 16


def check_given_token(token: str) -> str:
    """``token`` if an operator may give it (long enough, printable, no spaces), else
    :class:`TokenError` saying what is wrong with it (never the token itself)."""
    if not MIN_GIVEN_LEN <= len(token) <= _MAX_LEN:
        raise TokenError(f"a join token is {MIN_GIVEN_LEN} to {_MAX_LEN} characters long")
    if not token.isascii() or not token.isprintable() or " " in token:
        raise TokenError("a join token is printable ASCII without spaces")
    return token


def write_new_token(path: Path, token: str | None = None) -> str:
    """Replace the token (``tarsus web token --rotate``) with ``token`` (checked), or a new
    random one; the old one stops working."""
    token = secrets.token_urlsafe(_BYTES) if token is None else check_given_token(token)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path.with_name(path.name + ".new"))  # left by a crash
    try:
        _write(path, token, replace=True)
    except OSError as e:
        raise TokenError(f"cannot write the token file {path}: {e}") from None
    return token


class TokenFile:
    """Checks candidates against the token in a file, read again when the file changed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._token = b""

    def current(self) -> bytes:
        """The token now in the file (:class:`TokenError` if it cannot be read)."""
        try:
            st = os.stat(self.path)
        except OSError as e:
            raise TokenError(f"cannot read the token file {self.path}: {e}") from None
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            self._token = _read(self.path).encode("ascii")
            self._stamp = stamp
        return self._token

    def matches(self, candidate: str) -> bool:
        """Whether ``candidate`` is the token, compared in constant time."""
        expected = self.current()
        try:
            given = candidate.encode("ascii")
        except UnicodeEncodeError:
            given = b""
        return hmac.compare_digest(given, expected)
