"""getLogData without a shell: the supported command forms, and everything else refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from tarsus.framework.node.logview import (
    MAX_OUTPUT,
    LogCommandError,
    list_log_files,
    log_file,
    run_log_command,
)

LINES = [f"{i:03d} {'ERROR' if i % 10 == 0 else 'info'} message {i}\n" for i in range(1, 201)]


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "App.Server.log"
    path.write_text("".join(LINES))
    return path


@pytest.mark.parametrize(
    ("cmd", "expected"),
    [
        ("tail -n 3 __log_file_name__", LINES[-3:]),
        ("tail -3 __log_file_name__", LINES[-3:]),
        ("head -n 2 __log_file_name__", LINES[:2]),
        ("head -2", LINES[:2]),
        ("grep ERROR __log_file_name__", [line for line in LINES if "ERROR" in line]),
        ("grep -i error __log_file_name__ | tail -n 2", LINES[189:190] + LINES[199:200]),
        ("tail -n 20 __log_file_name__ | grep -v info", [LINES[189], LINES[199]]),
        ("grep -c ERROR __log_file_name__", ["20\n"]),
        ("grep -n 'message 15$' __log_file_name__", [f"15:{LINES[14]}"]),
        ("grep -E '^(001|002) ' __log_file_name__", LINES[:2]),
        ("grep -F '(' __log_file_name__", []),
        ("grep 'info message 1\\(0\\|1\\)$' __log_file_name__", [LINES[10]]),
        ("cat __log_file_name__ | head -n 1", LINES[:1]),
        ("", LINES),
    ],
)
def test_supported_commands(log: Path, cmd: str, expected: list[str]) -> None:
    assert run_log_command(log, cmd) == "".join(expected)


@pytest.mark.parametrize(
    ("cmd", "error"),
    [
        ("rm -rf / __log_file_name__", "is not supported"),
        ("tail -n 5 __log_file_name__; rm -rf /", "';' is not allowed"),
        ("tail -n $(reboot) __log_file_name__", "'$' is not allowed"),
        ("cat /etc/passwd", "is not supported"),
        ("grep x /etc/passwd", "one pattern"),
        ("tail -n 5 > /tmp/x", "'>' is not allowed"),
        ("head -n 1 | grep x __log_file_name__", "first command"),
        ("grep -r x", "option -r is not supported"),
        ("tail -f __log_file_name__", "use tail -n N"),
        ("grep 'a[' __log_file_name__", "grep pattern"),
    ],
)
def test_other_commands_are_refused(log: Path, cmd: str, error: str) -> None:
    with pytest.raises(LogCommandError, match=error.replace("$", r"\$").replace("(", r"\(")):
        run_log_command(log, cmd)


def test_big_answers_are_cut(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    path.write_text(("x" * 1023 + "\n") * (MAX_OUTPUT // 1024 + 100))
    out = run_log_command(path, "cat")
    assert len(out) < MAX_OUTPUT + 100 and out.endswith(f"[... cut at {MAX_OUTPUT} bytes]\n")


def test_file_names_and_listing(tmp_path: Path) -> None:
    for name in ("A.B.log", "A.B_20240101.log", ".log", "notes.txt", "a.logx"):
        (tmp_path / name).write_text("")
    (tmp_path / "dir.log").mkdir()
    assert list_log_files(tmp_path) == ["A.B.log", "A.B_20240101.log", "a.logx"]
    assert list_log_files(tmp_path / "missing") == []
    assert log_file(tmp_path, "A.B.log") == tmp_path / "A.B.log"
    for bad in ("../A.B.log", "/etc/passwd", "..", ""):
        with pytest.raises(LogCommandError, match="plain file name"):
            log_file(tmp_path, bad)
    with pytest.raises(LogCommandError, match="does not exist"):
        log_file(tmp_path, "nope.log")
