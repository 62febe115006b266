"""How busy this shared machine was while a bench ran, and what it is.

A bench on a 2-core machine that others use at the same time measures the machine as much as
the code, so the benches print, beside their numbers: the load average before and after, how
busy both CPUs were (/proc/stat), how much CPU every process other than the bench's own took,
and the busiest of them.
"""

from __future__ import annotations

import contextlib
import os
import platform
import time
from pathlib import Path
from typing import Any

import psutil


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def machine_facts() -> str:
    """One line: CPU, core count, memory, kernel, Python."""
    mem = psutil.virtual_memory().total / 2**30
    return (
        f"{cpu_model()} (`nproc` {os.cpu_count()}), {mem:.1f} GiB RAM, "
        f"Linux {platform.release()}, Python {platform.python_version()}"
    )


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def _busy_seconds() -> float:
    """Seconds all CPUs were busy so far (everything but idle and iowait)."""
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0)


def _all_cpu() -> dict[int, tuple[str, float]]:
    """CPU seconds of every process now, with a short label."""
    out: dict[int, tuple[str, float]] = {}
    for p in psutil.process_iter(["pid", "name", "cmdline", "cpu_times"]):
        t = p.info["cpu_times"]
        if t is None:
            continue
        cmd = " ".join((p.info["cmdline"] or [])[:4]) or p.info["name"] or "?"
        out[p.info["pid"]] = (cmd[:90], t.user + t.system)
    return out


def our_pids() -> set[int]:
    """This process and every process below it (the bench's children and theirs)."""
    me = psutil.Process()
    pids = {me.pid}
    with contextlib.suppress(psutil.Error):
        pids.update(c.pid for c in me.children(recursive=True))
    return pids


class LoadWindow:
    """CPU the rest of the machine used between :meth:`start` and :meth:`end`.

    Processes below this one are the bench's own and are left out. A process that started
    and ended inside the window is not seen (its CPU is only in *machine busy*); one that
    started inside it and still runs counts in full.
    """

    def start(self) -> LoadWindow:
        self.t0 = time.perf_counter()
        self.load0 = load_average()
        self.busy0 = _busy_seconds()
        self.all0 = _all_cpu()
        return self

    def end(self, extra_ours: set[int] | None = None) -> dict[str, Any]:
        all1 = _all_cpu()
        busy1 = _busy_seconds()
        dt = time.perf_counter() - self.t0
        ours = our_pids() | (extra_ours or set())
        others: list[tuple[float, str]] = []
        for pid, (label, c1) in all1.items():
            if pid in ours:
                continue
            d = (c1 - (self.all0[pid][1] if pid in self.all0 else 0.0)) / dt
            if d > 0:
                others.append((d, label))
        others.sort(reverse=True)
        return {
            "seconds": dt,
            "load_before": self.load0,
            "load_after": load_average(),
            "machine_busy": (busy1 - self.busy0) / dt,
            "other": sum(d for d, _ in others),
            "top_others": [f"{label} {100 * d:.0f}%" for d, label in others[:4] if d >= 0.01],
        }


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def load_lines(w: dict[str, Any]) -> list[str]:
    """Markdown bullet lines describing one window."""
    top = "; ".join(w["top_others"]) or "none above 1%"
    return [
        f"- load average (1 / 5 / 15 min) before: {w['load_before']}, after: {w['load_after']}",
        f"- both CPUs busy over the {w['seconds']:.0f} s: {pct(w['machine_busy'])} of one core "
        f"(of {100 * (os.cpu_count() or 1)}%); processes other than the bench's: "
        f"{pct(w['other'])} (one that started and ended inside the window is only in the "
        "first figure)",
        f"- busiest other processes: {top}",
    ]
