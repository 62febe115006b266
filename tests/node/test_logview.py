"""getLogData without a shell: the supported command forms, and everything else refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tarsus.framework.admin import channel as admin_channel
from tarsus.framework.node.logview import (
    MAX_OUTPUT,
    LogCommandError,
    SearchLimits,
    list_log_files,
    log_file,
    run_log_command,
    search_log,
)
from tarsus.framework.node.settings import NodeSettings

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


# -- upstream TarsWeb's log viewer -----------------------------------------------------------


def tarsweb_command(
    keyword: str, *, search_sign: str, view_direction: str, ignore_case: bool, lines: int
) -> str:
    """The command TarsWeb 3.0.15 builds, character for character
    (``LogviewService.getQueryParam``, web/app/service/logview/LogviewService.js)."""
    cmd = ("tail -" if search_sign == "from_end" else "head -") + "200 __log_file_name__"
    grep_flag = " -a " + (" -i " if ignore_case else "")
    if keyword:
        cmd += " | grep " + grep_flag + keyword
    cmd += ("|tail -" if view_direction == "from_end" else "|head -") + str(lines)
    return cmd + " | iconv -c -f UTF-8 -t UTF-8|sed 's/[\\cA-\\cZ]//g'"


@pytest.mark.parametrize("search_sign", ["from_end", "from_begin"])
@pytest.mark.parametrize("view_direction", ["from_end", "from_begin"])
@pytest.mark.parametrize(
    ("keyword", "ignore_case"), [("", False), ("error", False), ("error", True)]
)
def test_tarsweb_log_viewer_commands(
    log: Path, search_sign: str, view_direction: str, keyword: str, ignore_case: bool
) -> None:
    cmd = tarsweb_command(
        keyword,
        search_sign=search_sign,
        view_direction=view_direction,
        ignore_case=ignore_case,
        lines=3,
    )
    found = [
        line
        for line in LINES
        if not keyword or (keyword in line.lower() if ignore_case else keyword in line)
    ]
    expected = found[-3:] if view_direction == "from_end" else found[:3]
    assert run_log_command(log, cmd) == "".join(expected)
    if keyword and not ignore_case:
        assert expected == []  # the log says ERROR: only -i finds it
    elif keyword:
        assert expected and all("ERROR" in line for line in expected)


def test_a_tarsweb_keyword_is_data_not_shell(tmp_path: Path) -> None:
    victim = tmp_path / "pwned"
    keyword = f"x; touch {victim} $(touch {victim}) `touch {victim}` > {victim} | rm -rf / &"
    path = tmp_path / "A.B.log"
    path.write_text(f"before\nfound {keyword} in a line\nafter\n")
    cmd = tarsweb_command(
        keyword, search_sign="from_end", view_direction="from_end", ignore_case=False, lines=50
    )
    assert run_log_command(path, cmd) == f"found {keyword} in a line\n"
    assert not victim.exists()
    # a keyword that is a regular expression elsewhere is literal text here
    path.write_text("a.c\nabc\n")
    cmd = tarsweb_command(
        "a.c", search_sign="from_begin", view_direction="from_begin", ignore_case=True, lines=50
    )
    assert run_log_command(path, cmd) == "a.c\n"


def test_iconv_and_sed_clean_the_answer(tmp_path: Path) -> None:
    """iconv -c drops what is not UTF-8; sed strips Ctrl-A..Ctrl-Z (tab included, as the
    sed TarsWeb appends does); what is left is valid UTF-8."""
    path = tmp_path / "A.B.log"
    path.write_bytes(b"ok \xe4\xb8\xad\xff\xfe end\x01\x07\tx\x1b[0m\n")
    cmd = "tail -n 5 __log_file_name__ | iconv -c -f UTF-8 -t UTF-8 | sed 's/[\\cA-\\cZ]//g'"
    assert run_log_command(path, cmd) == "ok \u4e2d endx\x1b[0m\n"
    assert run_log_command(path, "cat") == "ok \u4e2d\ufffd\ufffd end\x01\x07\tx\x1b[0m\n"


@pytest.mark.parametrize(
    ("cmd", "error"),
    [
        ("tail -5 __log_file_name__ | grep -a x; touch /tmp/y", "';' is not allowed"),
        ("tail -5 __log_file_name__ | grep -a x | iconv -f latin1 -t UTF-8", "not supported"),
        ("tail -5 __log_file_name__ | sed 's/a/b/'", "not supported"),
        ("tail -5 __log_file_name__ | sed -n 'e id'", "not supported"),
        ("tail -5 __log_file_name__ | iconv -c -f UTF-8 -t UTF-8 -o /tmp/x", "not supported"),
        ("tail -5 __log_file_name__ | grep -a `id`|tail -5", "'`' is not allowed"),
        ("tail -5 __log_file_name__|tail -5 | iconv -c -f UTF-8 -t UTF-8 > /tmp/x", "'>'"),
        ("tail -5 __log_file_name__ | grep -a x | python -c 'x'", "not supported"),
        ("tail -NaN __log_file_name__|tail -3", "use tail -n N"),
    ],
)
def test_other_shapes_stay_refused(log: Path, cmd: str, error: str) -> None:
    with pytest.raises(LogCommandError, match=re.escape(error)):
        run_log_command(log, cmd)


# -- bounds: a worker process with a time, memory and read budget ----------------------------


async def test_a_backtracking_pattern_times_out(tmp_path: Path) -> None:
    path = tmp_path / "A.B.log"
    path.write_text("a" * 40 + "\n")
    with pytest.raises(LogCommandError, match="timed out after 1 s"):
        await search_log(path, "grep -E '(a+)+b' __log_file_name__", SearchLimits(timeout=1))
    assert await search_log(path, "grep -c a", SearchLimits()) == "1\n"


async def test_a_search_needing_too_much_memory_says_so(tmp_path: Path) -> None:
    path = tmp_path / "A.B.log"
    with open(path, "wb") as f:  # 300 MB of NUL and no newline: one line, sparse on disk
        f.truncate(300 * 1024 * 1024)
    with pytest.raises(LogCommandError, match="too large: it needed more than"):
        await search_log(path, "grep x", SearchLimits(memory=96 * 1024 * 1024))


async def test_only_the_read_budget_of_the_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "A.B.log"
    path.write_text("".join(f"line {i}\n" for i in range(100_000)))
    limits = SearchLimits(max_read=10_000)
    out = await search_log(path, "tail -n 100000 __log_file_name__ | grep -c line", limits)
    assert 0 < int(out.split()[0]) < 1000  # of 100,000 lines
    assert "[... read only the last 10000 bytes of A.B.log]" in out
    out = await search_log(path, "grep -c line", limits)
    assert 0 < int(out.split()[0]) < 2000 and "stopped reading A.B.log after 10000 bytes" in out


def test_a_search_times_out_before_the_admin_registry_stops_waiting_for_the_node() -> None:
    """The console reaches getLogData through the admin registry, which waits a fixed time for
    the node's answer: a search must give up first, or the operator sees a call timeout (1002)
    instead of "the log search timed out"."""
    default = NodeSettings.__dataclass_fields__["log_search_timeout"].default
    assert isinstance(default, float) and default < admin_channel.DEFAULT_TIMEOUT
