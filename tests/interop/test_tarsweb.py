"""Upstream's web console (TarsWeb 3.0.15) over a Tarsus MariaDB store, with its DEFAULT schema
sync, as an existing Tars shop would run it; then ``tarsus`` on the same store.

TarsWeb's sync converts ``db_tars`` to its models at start: ``server_type`` becomes an
``ENUM`` (so Tarsus must store upstream values), ``t_server_conf.grid_flag`` is dropped (so
Tarsus must read named columns) and a foreign key ``t_task.task_no -> t_task_item.task_no``
appears (so tasks must be written items first). Hello is then operated through TarsWeb's HTTP
API and through the ``tarsus`` CLI.

Needs the TarsWeb tarball (skipped, with the reason, without it; see ``tarsweb.py``), ``node``,
the ``mysql`` client and MariaDB on 127.0.0.1:3306. Uses the fixed ports of ``tarsus up``
(17890, 17891, 12000, 19386, 18601) and TarsWeb's 3000, and the databases TarsWeb hard-codes
(``db_tars``, ``db_tars_web``, ``db_user_system``), which it creates and drops itself; it
fails, touching nothing, when one of them exists and is not its own.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import tarsweb

from tarsus.store.schema import UPSTREAM_SERVER_TYPES
from tarsus.testing import TarsusUp, eventually_sync, port_is_free

pytestmark = pytest.mark.tarsweb

ROOT = Path(__file__).resolve().parents[2]
TARSUS = [sys.executable, "-m", "tarsus"]
PORTS = (17890, 17891, 12000, 18793, 18993, 19386, 18601, tarsweb.PORT, 18593)
NODE = "127.0.0.1"
HELLO = ("Test", "HelloServer")
#: Marks the databases this test created, so a leftover of a killed run is recognised.
OWNER_TABLE = "tarsus_tarsweb_test_owner"
EM_T_SUCCESS = 3
T = TypeVar("T")


def _mysql(sql: str, database: str = "", *, force: bool = False, stdin: str = "") -> str:
    mysql = shutil.which("mysql") or "mysql"
    argv = [mysql, "-uroot", "-h127.0.0.1", "-P3306", "-N", "-B"]
    if force:
        argv.append("--force")
    if sql:
        argv += ["-e", sql]
    if database:
        argv.append(database)
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=120)
    if done.returncode != 0 and not force:
        raise AssertionError(f"mysql {sql[:80]!r} failed: {done.stderr}")
    return done.stdout


def _eventually(check: Callable[[], T], what: str, timeout: float, logs: list[Path]) -> T:
    """``check()``'s first truthy answer, polled until ``timeout`` s; else fail with the logs."""

    def tails() -> str:
        return "\n".join(f"--- {p.name}:\n{p.read_text(errors='replace')[-4000:]}" for p in logs)

    return eventually_sync(check, what, timeout=timeout, interval=0.2, describe=tails)


@contextlib.contextmanager
def _databases_to_ourselves() -> Iterator[None]:
    """Hold a MariaDB named lock while the databases are ours: another run of this test on the
    same server (a parallel run of the suite on the machine) waits for it instead of taking
    the names TarsWeb hard-codes from under this one. The lock lives as long as the session
    of the ``mysql`` client holding it."""
    mysql = shutil.which("mysql") or "mysql"
    holder = subprocess.Popen(
        [mysql, "-uroot", "-h127.0.0.1", "-P3306", "-N", "-B", "--unbuffered"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdin is not None and holder.stdout is not None
    try:
        holder.stdin.write(f"SELECT GET_LOCK('{OWNER_TABLE}', 1200);\n")
        holder.stdin.flush()
        got = holder.stdout.readline().strip()
        if got != "1":
            pytest.fail(f"another run of this test held TarsWeb's databases for 20 min ({got!r})")
        yield
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)


def _claim_databases() -> None:
    """Drop our own leftovers; fail if one of TarsWeb's databases belongs to someone else."""
    existing = set(_mysql("SHOW DATABASES").split())
    for name in tarsweb.DATABASES:
        if name not in existing:
            continue
        tables = set(_mysql("SHOW TABLES", name).split())
        if OWNER_TABLE not in tables:
            pytest.fail(
                f"database {name} already exists on 127.0.0.1:3306 and was not created by this "
                f"test; TarsWeb hard-codes that name, so the test cannot run beside it. Drop it "
                f"(or run the test against another MariaDB) and run again."
            )
        _mysql(f"DROP DATABASE `{name}`")
    for name in tarsweb.DATABASES:
        _mysql(
            f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4; "
            f"CREATE TABLE `{name}`.`{OWNER_TABLE}` (owner VARCHAR(64)); "
            f"INSERT INTO `{name}`.`{OWNER_TABLE}` VALUES ('tests/interop/test_tarsweb.py')"
        )


def _drop_databases() -> None:
    for name in tarsweb.DATABASES:
        _mysql(f"DROP DATABASE IF EXISTS `{name}`")


def _stop(proc: subprocess.Popen[bytes], sig: int) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Console:
    """TarsWeb's HTTP API on port 3000, over ``tarsus up``'s store."""

    up_log: Path
    web_log: Path
    web: subprocess.Popen[bytes]

    def logs(self) -> list[Path]:
        return [self.up_log, self.web_log]

    def request(self, method: str, path: str, body: Any = None, **params: str) -> Any:
        url = f"http://127.0.0.1:{tarsweb.PORT}/api/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=30) as rsp:
            answer = json.loads(rsp.read())
        assert answer.get("ret_code") == 200, f"{method} {path} {params}: {answer}"
        return answer.get("data")

    def get(self, path: str, **params: str) -> Any:
        return self.request("GET", path, **params)

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    tarball = tarsweb.find_tarball()
    if tarball is None:
        pytest.skip(
            f"TarsWeb tarball absent (set ${tarsweb.TARBALL_ENV} or lay shared/peers/tarsweb/ "
            f"beside the clone)"
        )
    node = shutil.which("node")
    if node is None or shutil.which("mysql") is None:
        pytest.fail("the TarsWeb test needs `node` and the `mysql` client on PATH")
    web = tarsweb.prepare(tarball)
    busy = [p for p in PORTS if not port_is_free(p)]
    if busy:
        pytest.fail(f"ports {busy} are taken (another Tars framework or TarsWeb runs here)")
    with _databases_to_ourselves():
        yield from _console(web, node, tmp_path_factory)


def _start_web(web: Path, node: str, log: Path, home: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [node, "bin/www"],
            cwd=web,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={
                "PATH": "/usr/bin:/bin",
                "HOME": str(home),
                "TARS_ENABLE_LOGIN": "false",
                "ENABLE_K8S": "false",
            },
        )


def _synced(console: Console, wanted: set[str], *, last: bool) -> bool:
    """Wait for TarsWeb's schema sync and port 3000; False when TarsWeb exited during the sync
    (fails instead when this is the ``last`` attempt)."""
    proc = console.web

    def synced() -> bool:
        text = console.web_log.read_text(errors="replace")
        if proc.poll() is not None:
            if last:
                pytest.fail(f"TarsWeb exited ({proc.returncode}) during its schema sync:\n{text}")
            return True  # the caller starts it again
        return all(f"database {t} sync succ" in text for t in wanted) and not port_is_free(
            tarsweb.PORT
        )

    _eventually(synced, "TarsWeb's schema sync", 180, console.logs())
    return proc.poll() is None


def _console(web: Path, node: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    _claim_databases()
    tmp = tmp_path_factory.mktemp("tarsweb")
    up_log, web_log = tmp / "up.log", tmp / "web.log"
    stops: list[Callable[[], object]] = []
    try:
        up = TarsusUp(
            "--data-dir", str(tmp / "data"), "--db", "mysql://root@127.0.0.1:3306/db_tars",
            "--no-web",  # TarsWeb takes port 3000 here, the web's default
            log=up_log, cwd=ROOT, timeout=120,
        )  # fmt: skip
        stops.append(up.stop)
        for name in ("db_tars_web", "db_user_system"):
            # --force: two `set global innodb_*` lines of TarsWeb's SQL fail on MariaDB 10.11
            _mysql("", name, force=True, stdin=(web / "sql" / f"{name}.sql").read_text())
        wanted = tarsweb.sync_tables(web)
        for attempt in (1, 2):
            proc = _start_web(web, node, web_log, tmp)
            stops.append(lambda proc=proc: _stop(proc, signal.SIGTERM))
            console = Console(up_log, web_log, proc)
            if _synced(console, wanted, last=attempt == 2):
                break
            # TarsWeb 3.0.15 syncs its tables concurrently at start (app/dao/db/index.js, each
            # model's sync({alter: true}) unawaited) and exits when one of them fails; on a
            # loaded machine one sometimes does ("Table 'db_tars_web.t_business' doesn't
            # exist"). Its second start finds the tables the first one made.
            web_log.rename(tmp / "web-first-start.log")
        yield console
    finally:
        try:
            for stop in reversed(stops):
                stop()
        finally:
            _drop_databases()


def _hello_row(console: Console) -> dict[str, Any]:
    rows = console.get("server_list", tree_node_id="1Test.5HelloServer")
    assert [(r["application"], r["server_name"]) for r in rows] == [HELLO], rows
    return rows[0]


def test_schema_sync_ran_and_tarsus_wrote_only_upstream_values(console: Console) -> None:
    assert console.web.poll() is None, "TarsWeb exited after its schema sync"
    columns = _mysql("SHOW COLUMNS FROM t_server_conf", "db_tars")
    assert "grid_flag" not in columns, "the sync should have dropped grid_flag"
    fks = _mysql(
        "SELECT COUNT(*) FROM information_schema.REFERENTIAL_CONSTRAINTS "
        "WHERE CONSTRAINT_SCHEMA='db_tars' AND TABLE_NAME='t_task'"
    )
    assert int(fks) >= 1, "the sync should have added t_task's foreign key"
    stored = set(_mysql("SELECT DISTINCT server_type FROM t_server_conf", "db_tars").split())
    assert stored and stored <= set(UPSTREAM_SERVER_TYPES), stored


def test_tree_and_server_list(console: Console) -> None:
    tree = json.dumps(console.get("tree"))
    assert "HelloServer" in tree and "Test" in tree, tree
    row = _hello_row(console)
    assert row["node_name"] == NODE
    assert row["setting_state"] == "active" and row["present_state"] == "active", row


def test_restart_task_completes(console: Console) -> None:
    server_id = str(_hello_row(console)["id"])
    task_no = console.post(
        "add_task", {"serial": True, "items": [{"server_id": server_id, "command": "restart"}]}
    )
    assert isinstance(task_no, str) and task_no, task_no

    def finished() -> dict[str, Any] | None:
        task = console.get("task", task_no=task_no)
        items = task.get("items") or []
        return task if items and all(i["status"] >= EM_T_SUCCESS for i in items) else None

    task = _eventually(finished, "the restart task to finish", 120, console.logs())
    assert [i["status"] for i in task["items"]] == [EM_T_SUCCESS], task
    assert "(1005)" not in console.up_log.read_text(errors="replace")
    _eventually(
        lambda: _hello_row(console)["present_state"] == "active",
        "Hello to be active again after the restart",
        60,
        console.logs(),
    )


def test_nodes_and_templates(console: Console) -> None:
    nodes = json.dumps(console.get("node_list"))
    assert NODE in nodes, nodes
    templates = console.get("template_name_list")
    assert {"tars.default", "tars.tarspython.default"} <= set(templates), templates


def test_framework_list_names_the_node_and_the_framework_services(console: Console) -> None:
    servers = console.get("get_framework_list")["servers"]
    nodes = [s for s in servers if s["serverName"] == "tarsnode"]
    assert [s["nodeName"] for s in nodes] == [NODE], servers
    # Filled on registration from the node's address: something checkServer can ping.
    assert nodes[0]["objName"] == f"tars.tarsnode.ServerObj@tcp -h {NODE} -p 19386 -t 60000"
    # The framework's own services are servers of application tars, with upstream's objects.
    objects = {s["objName"].split("@")[0] for s in servers if s["serverName"] != "tarsnode"}
    assert objects == {
        "tars.tarsregistry.QueryObj",
        "tars.tarsregistry.RegistryObj",
        "tars.tarsAdminRegistry.AdminRegObj",
        "tars.tarspatch.PatchObj",
        "tars.tarsconfig.ConfigObj",
        "tars.tarsconfig.ConfigExtObj",  # ours: the operators' objects beside upstream's
        "tars.tarslog.LogObj",
        "tars.tarslog.LogExtObj",
        "tars.tarsnotify.NotifyObj",
        "tars.tarsalarm.AlarmObj",
        "tars.tarsstat.StatObj",
        "tars.tarsproperty.PropertyObj",
        "tars.tarsquerystat.QueryObj",
        "tars.tarsqueryproperty.QueryObj",
    }, servers


def _log_params() -> dict[str, str]:
    app, server = HELLO
    return {"application": app, "server_name": server, "node_name": NODE}


def test_log_viewer_lists_the_files(console: Console) -> None:
    answer = json.loads(console.get("logview_list", **_log_params()))
    assert answer["iRet"] == 0 and "Test.HelloServer.log" in answer["data"], answer


def _log_view(console: Console, keyword: str = "", ignore_case: bool = False) -> Any:
    """What TarsWeb's log viewer page asks: its query form as JSON, which TarsWeb turns into
    ``tail -N __log_file_name__ [| grep -a [-i] WORD] |tail -M | iconv ... | sed ...``."""
    form = {
        "search_lines": "1000",
        "search_sign": "from_end",
        "keyword": keyword,
        "ignoreCase": "Y" if ignore_case else "N",
        "lines": "50",
        "view_direction": "from_end",
    }
    params = {**_log_params(), "log_file": "Test.HelloServer.log"}
    return json.loads(console.get("logview_data", **params, interface_params=json.dumps(form)))


def test_log_viewer_shows_the_data(console: Console) -> None:
    answer = _log_view(console)
    assert answer["iRet"] == 0 and answer["data"].strip(), answer
    lines = answer["data"].strip().splitlines()
    assert 0 < len(lines) <= 50
    found = _log_view(console, keyword=lines[-1].split()[-1])
    assert found["iRet"] == 0 and lines[-1] in found["data"], found
    # a keyword is data for grep, never shell: TarsWeb pastes it into the command unquoted
    hostile = _log_view(console, keyword="x;touch${IFS}/tmp/tarsus-pwned")
    assert hostile["iRet"] == 0 and not Path("/tmp/tarsus-pwned").exists(), hostile


def test_tarsus_cli_after_the_sync(console: Console) -> None:
    def tarsus(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*TARSUS, *args], capture_output=True, text=True, timeout=120, cwd=ROOT
        )

    listed = tarsus("server", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    text = json.dumps(rows)
    assert "Test.HelloServer" in text and "tars_python" in text, text
    restarted = tarsus("server", "restart", "Test.HelloServer", "--node", NODE)
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    _eventually(
        lambda: _hello_row(console)["present_state"] == "active",
        "Hello to be active again after `tarsus server restart`",
        60,
        console.logs(),
    )
