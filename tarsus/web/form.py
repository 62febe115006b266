"""A ``multipart/form-data`` body received as it arrives: text fields kept (small, few), the
one file part written straight to a temporary file while its md5 is computed, never the whole
body in memory. Past any limit the receipt stops at once and what was written is removed.

The parser is python-multipart's streaming one (the same Starlette uses), driven by our
callbacks so the limits apply while the bytes come in, not after.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

__all__ = ["FormError", "FormLimits", "ReceivedFile", "ReceivedForm", "receive_form"]


class FormError(Exception):
    """The body is refused: ``status`` is the HTTP status to answer, the message says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class FormLimits:
    #: bytes of the file part at most
    max_file: int
    #: the names of the file parts taken (at most one file per body)
    file_fields: frozenset[str]
    #: bytes of one text field at most
    max_field: int = 64 * 1024
    #: parts (fields and file) at most
    max_parts: int = 32
    #: bytes of one part's headers at most
    max_headers: int = 8 * 1024


@dataclass
class ReceivedFile:
    field: str
    #: the client's file name, as sent (only ever shown, never used as a path)
    filename: str
    path: Path
    size: int
    md5: str

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


@dataclass
class ReceivedForm:
    fields: dict[str, str] = field(default_factory=dict)
    file: ReceivedFile | None = None

    def discard(self) -> None:
        """Remove the received file, if any (always call it once done with the form)."""
        if self.file is not None:
            self.file.remove()


class _Receiver:
    """The parser's callbacks: one part at a time."""

    def __init__(self, limits: FormLimits, spool_dir: Path) -> None:
        self.limits = limits
        self.spool_dir = spool_dir
        self.form = ReceivedForm()
        self.parts = 0
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._headers: dict[bytes, bytes] = {}
        self._header_bytes = 0
        self._name = ""
        self._filename: str | None = None
        self._text = bytearray()
        self._out: IO[bytes] | None = None
        self._out_path: Path | None = None
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._size = 0

    # -- headers
    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > self.limits.max_parts:
            raise FormError(400, f"too many form fields (at most {self.limits.max_parts})")
        self._headers = {}
        self._header_bytes = 0
        self._name, self._filename = "", None
        self._text = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[bytes(self._header_field).lower()] = bytes(self._header_value)
        self._header_field.clear()
        self._header_value.clear()

    def _count_header(self, n: int) -> None:
        self._header_bytes += n
        if self._header_bytes > self.limits.max_headers:
            raise FormError(400, "a form part's headers are too long")

    def on_headers_finished(self) -> None:
        disposition, params = parse_options_header(self._headers.get(b"content-disposition"))
        if disposition != b"form-data" or b"name" not in params:
            raise FormError(400, "a form part has no Content-Disposition: form-data; name=...")
        self._name = params[b"name"].decode("utf-8", "replace")
        filename = params.get(b"filename")
        if filename is None:
            if self._name in self.form.fields:
                raise FormError(400, f"field {self._name!r} is given twice")
            return
        self._filename = filename.decode("utf-8", "replace")
        if self._name not in self.limits.file_fields:
            wanted = ", ".join(sorted(self.limits.file_fields))
            raise FormError(
                400, f"unexpected file field {self._name!r} (send the file as {wanted})"
            )
        if self.form.file is not None:
            raise FormError(400, "only one file may be sent")
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        path = self.spool_dir / f"{secrets.token_hex(12)}.part"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._out_path = path
        self._out = os.fdopen(fd, "wb")

    # -- data
    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._out is not None:
            self._size += len(chunk)
            if self._size > self.limits.max_file:
                raise FormError(
                    413, f"the file is larger than the limit of {self.limits.max_file} bytes"
                )
            self._md5.update(chunk)
            self._out.write(chunk)
            return
        self._text += chunk
        if len(self._text) > self.limits.max_field:
            raise FormError(413, f"field {self._name!r} is longer than {self.limits.max_field}")

    def on_part_end(self) -> None:
        if self._out is not None:
            assert self._out_path is not None
            self._out.close()
            self._out = None
            self.form.file = ReceivedFile(
                self._name, self._filename or "", self._out_path, self._size, self._md5.hexdigest()
            )
            return
        try:
            self.form.fields[self._name] = self._text.decode("utf-8")
        except UnicodeDecodeError:
            raise FormError(400, f"field {self._name!r} is not UTF-8 text") from None

    @property
    def inside_file(self) -> bool:
        return self._out is not None

    def abort(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
        if self._out_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self._out_path.unlink()


async def receive_form(
    body: AsyncIterator[bytes], content_type: str, spool_dir: Path, limits: FormLimits
) -> ReceivedForm:
    """Read a ``multipart/form-data`` body from ``body``; :class:`FormError` (with nothing left
    on disk) when it is malformed or over a limit. The caller removes the file when done
    (:meth:`ReceivedForm.discard`)."""
    kind, params = parse_options_header(content_type)
    if kind != b"multipart/form-data":
        raise FormError(415, "send the package as multipart/form-data (curl -F suse=@X.tgz ...)")
    boundary = params.get(b"boundary")
    if not boundary or len(boundary) > 200:
        raise FormError(400, "the multipart Content-Type has no usable boundary")
    receiver = _Receiver(limits, spool_dir)
    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": receiver.on_part_begin,
            "on_part_data": receiver.on_part_data,
            "on_part_end": receiver.on_part_end,
            "on_header_field": receiver.on_header_field,
            "on_header_value": receiver.on_header_value,
            "on_header_end": receiver.on_header_end,
            "on_headers_finished": receiver.on_headers_finished,
        },
    )
    try:
        async for chunk in body:
            if chunk:
                parser.write(chunk)
        parser.finalize()
    except MultipartParseError as e:
        receiver.abort()
        raise FormError(400, f"the multipart body is malformed: {e}") from None
    except BaseException:
        receiver.abort()
        raise
    if receiver.inside_file:  # the body ended inside the file part
        receiver.abort()
        raise FormError(400, "the multipart body ended before the file did")
    return receiver.form
