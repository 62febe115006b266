"""Multi-MiB buffers without a page fault per 4 KiB: glibc malloc's thresholds, set once.

A call carrying 1 MiB (a package store chunk, an upload) makes several buffers of that size in
turn: the bytes read, the decoded field, the encoded answer, the packet around it. glibc hands
out anything above its mmap threshold (128 KiB at start, raised to the largest block freed so
far) as fresh pages from the kernel and trims the heap back whenever 2 x that threshold is
free at its top, so with a few such buffers alive at once nearly every one comes as new pages:
the kernel zeroes and maps each page on first touch, and a copy that should cost 0.05 ms per
MiB costs ten times that. Measured on the package store (docs/benchmarks.md): uploads in 1 MiB
chunks went from 70-100 MB/s to 180-290 MB/s, the uploading client's CPU per MB fell five-fold.

:func:`tune` keeps blocks up to :data:`MMAP_THRESHOLD` in the heap and lets up to
:data:`TRIM_THRESHOLD` of free heap stay for the next buffer (what a process keeps beyond what
it uses is bounded by that). Every connection calls it (``tarsus.rpc.framing``); the first call
in a process does the work. Nothing changes where malloc is not glibc's, where the operator set
``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` (theirs wins), or when
``TARSUS_MALLOC_TUNING=off``.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import sys
from typing import Final

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "tune"]

log = logging.getLogger("tarsus.rpc.allocator")

#: Blocks up to this size come from the heap (above: mmap, as glibc does for all big blocks).
MMAP_THRESHOLD: Final = 16 * 1024 * 1024
#: Free heap kept for reuse before it goes back to the kernel.
TRIM_THRESHOLD: Final = 32 * 1024 * 1024

#: glibc's ``mallopt`` parameters (malloc.h)
_M_TRIM_THRESHOLD: Final = -1
_M_MMAP_THRESHOLD: Final = -3

_ENV_OFF: Final = "TARSUS_MALLOC_TUNING"
_GLIBC_ENV: Final = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


@functools.cache
def tune() -> bool:
    """Set the thresholds, the first time a process asks; True if they are ours."""
    return _try()


def _try() -> bool:
    if os.environ.get(_ENV_OFF, "").lower() in ("off", "0", "no", "false"):
        return False
    if any(name in os.environ for name in _GLIBC_ENV):
        return False  # the operator tuned malloc: leave it
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        version = libc.gnu_get_libc_version  # glibc only (not musl)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    version.restype = ctypes.c_char_p
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    mmap_set: int = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    trim_set: int = mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    if mmap_set != 1 or trim_set != 1:
        return False
    glibc = version().decode()
    log.debug("glibc %s malloc: mmap threshold %d, trim threshold %d", glibc,
              MMAP_THRESHOLD, TRIM_THRESHOLD)  # fmt: skip
    return True
