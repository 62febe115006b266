"""Receiving a package: the one way the script API and the console's upload take a file.

The body is streamed to a temporary file under ``<data-dir>/web/incoming`` while its md5 is
computed (:func:`tarsus.web.form.receive_form`), refused early when its declared length is over
the limit, and at most ``max_concurrent_uploads`` are received at once (more: 429). The file
is removed when the ``async with`` ends, whatever happened.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import Request
from starlette.requests import ClientDisconnect

from tarsus.ops.errors import OpError, TooMany
from tarsus.web.form import FormError, FormLimits, ReceivedForm, receive_form
from tarsus.web.settings import WebSettings

__all__ = ["FORM_OVERHEAD", "UPLOAD_FIELD", "PackageUploads", "UploadRejected"]

#: the file field upstream's upload form and ``make upload`` send
UPLOAD_FIELD = "suse"
#: bytes the multipart framing and the text fields may add to the package's size
FORM_OVERHEAD = 64 * 1024


class UploadRejected(OpError):
    """The body is refused as sent (too large 413, not multipart 415, malformed 400)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class PackageUploads:
    def __init__(self, settings: WebSettings) -> None:
        self.settings = settings
        self.slots = asyncio.Semaphore(settings.max_concurrent_uploads)
        self.limits = FormLimits(
            max_file=settings.max_upload, file_fields=frozenset({UPLOAD_FIELD})
        )

    @contextlib.asynccontextmanager
    async def receive(self, request: Request) -> AsyncIterator[ReceivedForm]:
        """The request's form, its package (field ``suse``) on disk for the ``with``."""
        declared = request.headers.get("content-length", "")
        limit = self.settings.max_upload
        if declared.isdigit() and int(declared) > limit + FORM_OVERHEAD:
            raise UploadRejected(
                413,
                f"the upload is {declared} bytes: larger than the limit of {limit} bytes "
                "for a package",
            )
        if self.slots.locked():
            raise TooMany("too many uploads in progress; try again shortly")
        async with self.slots:
            try:
                form = await receive_form(
                    request.stream(),
                    request.headers.get("content-type", ""),
                    self.settings.incoming_dir,
                    self.limits,
                )
            except FormError as e:
                raise UploadRejected(e.status, e.message) from None
            except ClientDisconnect:
                raise UploadRejected(400, "the client went away during the upload") from None
            except RuntimeError:  # Starlette read the body already (a form's CSRF field)
                raise UploadRejected(
                    400,
                    "send the CSRF token as the X-CSRF-Token header with a package upload",
                ) from None
            try:
                yield form
            finally:
                form.discard()
