"""Running an installed role as a service: a systemd unit, or a detached process without one.

The unit runs ``python -m tarsus install run ROLE --config /etc/tarsus/ROLE.toml`` with the
Python Tarsus is installed in. Where systemd runs (and no ``--prefix`` was given) the unit is
enabled and started (``systemctl enable --now``), and restarted when the install changed it or
its settings. Elsewhere (containers, a host without systemd, tests) the same command is
started detached with its pid in ``/var/lib/tarsus/run/ROLE.pid`` and its output in
``/var/lib/tarsus/log/ROLE.log`` — nohup's way; a re-run leaves a running one alone unless
something changed.

The node's unit stops only the node agent (``KillMode=process``): the services it started
keep running and a node started again adopts them, as upstream's tarsnode.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psutil  # type: ignore[import-untyped]

from tarsus.install.errors import InstallError
from tarsus.install.layout import Layout

__all__ = ["Service", "ready_file", "render_unit", "systemd_running", "verify_unit"]

_DESCRIPTIONS = {
    "framework": "Tarsus framework services (registry, admin registry, config, patch, log, "
    "stat, property, notify) under this host's node agent, and the web app",
    "node": "Tarsus node agent (starts, watches and restarts this host's services)",
}


def ready_file(data_dir: Path, role: str) -> Path:
    """Written by a running role once it is up (and gone while it starts): what an install
    waits for, and the sign that the running process can hand over in place (SIGHUP)."""
    return data_dir / "run" / f"{role}.ready"


def run_argv(role: str, settings_file: Path) -> list[str]:
    return [sys.executable, "-m", "tarsus", "install", "run", role, "--config", str(settings_file)]


def render_unit(role: str, settings_file: Path) -> str:
    argv = " ".join(run_argv(role, settings_file))
    after = "network-online.target"
    if role == "framework":
        after += " mariadb.service mysql.service"
    kill_mode = "process" if role == "node" else "mixed"
    # the framework re-executes itself on SIGHUP, leaving its services running (an upgrade)
    reload = "ExecReload=/bin/kill -HUP $MAINPID\n" if role == "framework" else ""
    return (
        "# Written by `tarsus install "
        f"{role}`; run it again rather than editing this file (docs/install.md).\n"
        "[Unit]\n"
        f"Description={_DESCRIPTIONS[role]}\n"
        f"After={after}\n"
        "Wants=network-online.target\n"
        "\n"
        "[Service]\n"
        "Type=simple\n"
        f"ExecStart={argv}\n"
        f"{reload}"
        "Restart=on-failure\n"
        "RestartSec=2\n"
        f"KillMode={kill_mode}\n"
        "TimeoutStopSec=60\n"
        "LimitNOFILE=65536\n"
        "\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )


def unit_name(role: str) -> str:
    return f"tarsus-{role}.service"


def systemd_running() -> bool:
    return Path("/run/systemd/system").is_dir() and shutil.which("systemctl") is not None


def verify_unit(path: Path) -> str | None:
    """``systemd-analyze verify`` of a unit file: its complaints, or None when clean (or when
    systemd-analyze is not installed)."""
    tool = shutil.which("systemd-analyze")
    if tool is None:
        return None
    done = subprocess.run(
        [tool, "verify", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    # it also reports on units the file names (network-online.target...) that this host lacks
    complaints = [
        line
        for line in (done.stdout + done.stderr).splitlines()
        if str(path) in line or path.name in line
    ]
    return "\n".join(complaints) if done.returncode != 0 or complaints else None


@dataclass(frozen=True)
class Service:
    """One installed role and how it runs here."""

    role: str
    layout: Layout

    @property
    def settings_file(self) -> Path:
        return self.layout.settings_file(self.role)

    @property
    def unit_file(self) -> Path:
        return self.layout.unit_dir / unit_name(self.role)

    def uses_systemd(self) -> bool:
        return self.layout.prefix is None and systemd_running()

    def write_unit(self) -> bool:
        from tarsus.install.settings import write_private

        return write_private(self.unit_file, render_unit(self.role, self.settings_file), mode=0o644)

    # --------------------------------------------------------------- starting

    @property
    def ready_file(self) -> Path:
        return ready_file(self.layout.data_dir, self.role)

    def can_hand_over(self) -> bool:
        """The running framework is up and re-executes itself on SIGHUP (one that predates
        handing over never writes its ready file)."""
        running = self.uses_systemd() or self.running_pid() is not None
        return self.role == "framework" and running and self.ready_file.is_file()

    def hand_over(self) -> str:
        """The running framework process restarted in place with the code now installed: on
        SIGHUP it stops its node agent and web app but leaves the framework services running,
        and re-executes itself (same pid), adopting them (docs/install.md, "Upgrading")."""
        self.ready_file.unlink(missing_ok=True)
        if self.uses_systemd():
            name = unit_name(self.role)
            _systemctl("daemon-reload")
            _systemctl("reload", name)
            return f"systemd unit {name} reloaded in place"
        pid = self.running_pid()
        if pid is None:
            raise InstallError(f"the {self.role} is not running: nothing to hand over")
        os.kill(pid, signal.SIGHUP)
        return f"restarted in place (pid {pid}), its services left running"

    def start(self, *, changed: bool) -> str:
        """Started, restarted, or left running; says which."""
        if changed:
            self.ready_file.unlink(missing_ok=True)
        if self.uses_systemd():
            name = unit_name(self.role)
            _systemctl("daemon-reload")
            _systemctl("enable", name)
            _systemctl("restart" if changed else "start", name)
            return f"systemd unit {name} {'restarted' if changed else 'started'}"
        running = self.running_pid()
        if running is not None and not changed:
            return f"already running (pid {running}), unchanged"
        if running is not None:
            self.stop_detached(running)
        self.ready_file.unlink(missing_ok=True)
        pid = self._spawn()
        verb = "restarted" if running is not None else "started"
        return f"{verb} detached (pid {pid}, log {self.layout.log_file(self.role)})"

    def running_pid(self) -> int | None:
        """The pid of this role's detached process, if it runs."""
        try:
            pid = int(self.layout.pid_file(self.role).read_text().strip())
            cmdline = psutil.Process(pid).cmdline()
        except (OSError, ValueError, psutil.Error):
            return None
        wanted = ["install", "run", self.role]
        return pid if any(cmdline[i : i + 3] == wanted for i in range(len(cmdline))) else None

    def stop_detached(self, pid: int, timeout: float = 60.0) -> None:
        try:
            proc = psutil.Process(pid)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout)
        except psutil.TimeoutExpired:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
        self.layout.pid_file(self.role).unlink(missing_ok=True)

    def _spawn(self) -> int:
        log = self.layout.log_file(self.role)
        log.parent.mkdir(parents=True, exist_ok=True)
        self.layout.run_dir.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out, open(os.devnull, "rb") as null:
            proc = subprocess.Popen(
                run_argv(self.role, self.settings_file),
                stdin=null,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.layout.data_dir,
            )
        self.layout.pid_file(self.role).write_text(f"{proc.pid}\n")
        return proc.pid

    def died(self) -> str | None:
        """For a detached process that should be running: the end of its log when it is not."""
        if self.uses_systemd() or self.running_pid() is not None:
            return None
        return tail(self.layout.log_file(self.role))


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _systemctl(*args: str) -> None:
    done = subprocess.run(["systemctl", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise InstallError(f"systemctl {' '.join(args)}: {done.stderr.strip() or done.stdout}")
