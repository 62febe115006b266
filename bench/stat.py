"""Call statistics at scale: StatObj ingesting a fleet's reports, and a day's curve read back.

**Ingest**: ``tars.tarsstat.StatObj`` runs as a process of its own (this file with ``--serve``)
over a fresh store; this process plays ``--servers`` servers that each report
``--interfaces`` rows every window, in calls of ``--rows-per-call`` rows (a TarsCpp client's
1400-byte packets carry about 10). The StatObj process's CPU seconds (user + system, psutil)
are measured from the first report until every window it received is in the database
(``t_ecstatus``), and divided by the wall time of the windows: the share of one core.
Must: < 50 % for 10,000 servers x 50 rows per 60 s window; goal < 20 %.

**Query**: ``--day-servers`` servers x ``--interfaces`` rows x every window of one day are
written straight into that day's 24 hourly tables; then ``MonitorQuery.query`` asks, through
``tars.tarsquerystat.QueryObj`` over a socket, the console's curve for one server (``slave_name``
of one server, grouped by ``f_tflag``, 0000-2360), ``--queries`` times: p50/p99 in ms.
Must: p99 <= 200 ms; goal <= 50 ms.

    .venv/bin/python bench/stat.py                          # both, SQLite, full size
    .venv/bin/python bench/stat.py --db mysql://root@127.0.0.1:3306/bench_stat
    .venv/bin/python bench/stat.py --quick --json           # what tests/bench runs
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tarsus.framework.monitor.query_service import QueryStatService  # noqa: E402
from tarsus.framework.monitor.settings import IngestSettings  # noqa: E402
from tarsus.framework.monitor.tables import STAT, HourlyTables  # noqa: E402
from tarsus.framework.service import host  # noqa: E402
from tarsus.framework.stat import StatService  # noqa: E402
from tarsus.protocol.gen import MonitorQuery, StatF  # noqa: E402
from tarsus.rpc.application import Application  # noqa: E402
from tarsus.rpc.communicator import Communicator  # noqa: E402
from tarsus.store import drop_database, open_store  # noqa: E402
from tarsus.testing import free_port  # noqa: E402

STAT_OBJ = "tars.tarsstat.StatObj"
QUERY_OBJ = "tars.tarsquerystat.QueryObj"


# ------------------------------------------------------------------ the StatObj process


async def serve(url: str, port: int, window: int) -> None:
    store = await open_store(url, create=True)
    settings = IngestSettings(
        window_s=window,
        source_id="127.0.0.1",
        max_keys=10**7,
        max_keys_per_source=10**7,
        max_pending_rows=10**7,
    )
    app = Application()
    host(app, StatService(store, settings), {STAT_OBJ: f"tcp -h 127.0.0.1 -p {port} -t 60000"})
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await app.start()
    print("ready", flush=True)
    await stop.wait()
    await app.stop(drain_timeout=1.0)
    await store.close()


# ------------------------------------------------------------------ the fleet


def fleet_calls(servers: int, interfaces: int, per_call: int) -> list[dict[Any, Any]]:
    """Every report call of one window: server-side rows of each server's interfaces."""
    body = StatF.StatMicMsgBody(
        count=120,
        timeoutCount=1,
        execCount=2,
        intervalCount={5: 60, 10: 30, 50: 20, 100: 10, 200: 0, 500: 0, 1000: 0, 2000: 0, 3000: 0},
        totalRspTime=1500,
        maxRspTime=90,
        minRspTime=1,
    )
    calls: list[dict[Any, Any]] = []
    current: dict[Any, Any] = {}
    for s in range(servers):
        for i in range(interfaces):
            head = StatF.StatMicMsgHead(
                masterName=f"Bench.Caller{s % 97}@1.0.0",
                slaveName=f"Bench.Server{s}",
                interfaceName=f"method{i}",
                slaveIp=f"10.{s // 65536 % 256}.{s // 256 % 256}.{s % 256}",
                slavePort=10000 + s % 1000,
            )
            current[head] = body
            if len(current) == per_call:
                calls.append(current)
                current = {}
    if current:
        calls.append(current)
    return calls


async def ingest(args: argparse.Namespace, url: str) -> dict[str, Any]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--serve",
            "--db",
            url,
            "--port",
            str(port),
            "--window",
            str(args.window),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the StatObj process did not start")
        calls = fleet_calls(args.servers, args.interfaces, args.rows_per_call)
        rows = args.servers * args.interfaces
        served = psutil.Process(proc.pid)
        async with Communicator(cache_dir=None) as comm:
            stat = comm.string_to_proxy(StatF.StatFProxy, f"{STAT_OBJ}@tcp -h 127.0.0.1 -p {port}")
            stat = stat.with_options(timeout_ms=60000)
            # start at the beginning of a window
            await asyncio.sleep(args.window - time.time() % args.window + 0.05)
            started = time.time()
            cpu0 = sum(served.cpu_times()[:2])
            for w in range(args.windows):
                sem = asyncio.Semaphore(64)

                async def send(msg: dict[Any, Any], sem: asyncio.Semaphore = sem) -> None:
                    async with sem:
                        assert await stat.reportMicMsg(msg, False) == 0

                await asyncio.gather(*(send(m) for m in calls))
                sent_by = time.time() - started - w * args.window
                await asyncio.sleep(max(0.0, started + (w + 1) * args.window - time.time()))
                print(f"window {w + 1}: {rows} rows sent in {sent_by:.1f} s", file=sys.stderr)
            # every window is written once t_ecstatus says so
            store = await open_store(url)
            try:
                tables = HourlyTables(store, STAT)
                last_end = datetime.fromtimestamp(started + args.windows * args.window)
                wanted = last_end.replace(microsecond=0).strftime("%Y-%m-%d %H:%M:%S")
                deadline = time.time() + 10 * args.window + 60
                while (await tables.last_complete()) < wanted:
                    if time.time() > deadline:
                        raise RuntimeError("StatObj did not write every window in time")
                    await asyncio.sleep(0.2)
                cpu = sum(served.cpu_times()[:2]) - cpu0
                written_at = time.time()
                stored = 0
                for name in await tables.existing():
                    async with store.connect() as conn:
                        stored += int(
                            (await conn.exec_driver_sql(f"SELECT COUNT(*) FROM {name}")).scalar()
                            or 0
                        )
            finally:
                await store.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    wall = args.windows * args.window
    return {
        "bench": "stat ingest",
        "db": "sqlite" if url.startswith("sqlite") else "mariadb",
        "servers": args.servers,
        "interfaces": args.interfaces,
        "rows_per_window": rows,
        "window_s": args.window,
        "windows": args.windows,
        "rows_stored": stored,
        "cpu_s": round(cpu, 2),
        "core_share_pct": round(100 * cpu / wall, 1),
        "written_after_last_window_s": round(written_at - started - wall, 1),
    }


# ------------------------------------------------------------------ a day, then its curve


async def day_query(args: argparse.Namespace, url: str) -> dict[str, Any]:
    store = await open_store(url, create=True)
    tables = HourlyTables(store, STAT)
    day = date.today() - timedelta(days=1)
    windows = 86400 // args.window
    generated = time.perf_counter()
    total = 0
    for w in range(windows):
        end = datetime.combine(day, datetime.min.time()) + timedelta(seconds=(w + 1) * args.window)
        if end.minute == 0 and end.second == 0:
            last = end - timedelta(minutes=1)
            flag, table_day = f"{last.hour:02d}60", last
        else:
            flag, table_day = end.strftime("%H%M"), end
        suffix = table_day.strftime("%Y%m%d%H")
        stamp = (end.strftime("%Y-%m-%d %H:%M:%S"), table_day.strftime("%Y-%m-%d"), flag, "1.1.1.1")
        rows = [
            (
                *stamp,
                f"Bench.Caller{s % 97}",
                f"Bench.Server{s}",
                f"method{i}",
                "1.0.0",
                "10.0.0.1",
                f"10.0.{s // 256 % 256}.{s % 256}",
                10000,
                0,
                100 + i,
                1,
                2,
                "5|60,10|30,50|20",
                1500,
                15,
                90,
                1,
            )
            for s in range(args.day_servers)
            for i in range(args.interfaces)
        ]
        for start in range(0, len(rows), 20000):
            await tables.write(suffix, rows[start : start + 20000])
        total += len(rows)
    generated = time.perf_counter() - generated
    print(f"generated {total} rows in {generated:.0f} s", file=sys.stderr)

    app = Application()
    port = free_port()
    host(app, QueryStatService(store), {QUERY_OBJ: f"tcp -h 127.0.0.1 -p {port} -t 60000"})
    await app.start()
    times: list[float] = []
    try:
        async with Communicator(cache_dir=None) as comm:
            query = comm.string_to_proxy(
                MonitorQuery.MonitorQueryProxy, f"{QUERY_OBJ}@tcp -h 127.0.0.1 -p {port}"
            ).with_options(timeout_ms=60000)
            for q in range(args.queries):
                server = f"Bench.Server{q * 7 % args.day_servers}"
                req = MonitorQuery.MonitorQueryReq(
                    dataid="tars_stat",
                    date=day.strftime("%Y%m%d"),
                    tflag1="0000",
                    tflag2="2360",
                    conditions=[MonitorQuery.Condition("slave_name", MonitorQuery.OP.LIKE, server)],
                    indexs=["succ_count", "timeout_count", "exce_count", "total_time"],
                    groupby=["f_tflag"],
                )
                t0 = time.perf_counter()
                ret, rsp = await query.query(req)
                times.append((time.perf_counter() - t0) * 1000)
                assert ret == 0, rsp.msg
                assert len(rsp.result) == windows, len(rsp.result)
    finally:
        await app.stop(drain_timeout=1.0)
        await store.close()
    times.sort()
    return {
        "bench": "stat day curve",
        "db": "sqlite" if url.startswith("sqlite") else "mariadb",
        "rows_in_day": total,
        "servers": args.day_servers,
        "rows_per_curve": windows * args.interfaces,
        "queries": len(times),
        "p50_ms": round(statistics.median(times), 1),
        "p99_ms": round(times[max(0, int(len(times) * 0.99) - 1)], 1),
        "max_ms": round(times[-1], 1),
        "generate_s": round(generated, 1),
    }


# ------------------------------------------------------------------ main


def fresh_url(base: str | None, tmp: Path, tag: str) -> str:
    if base is None:
        return f"sqlite:///{tmp / f'{tag}.db'}"
    return f"{base.rstrip('/')}/bench_stat_{tag}_{secrets.token_hex(4)}"


async def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--db", help="MariaDB server URL (mysql://user@host:port); default SQLite")
    ap.add_argument("--servers", type=int, default=10_000)
    ap.add_argument("--interfaces", type=int, default=50)
    ap.add_argument("--rows-per-call", type=int, default=10)
    ap.add_argument("--window", type=int, default=60)
    ap.add_argument("--windows", type=int, default=2)
    ap.add_argument("--day-servers", type=int, default=20)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--only", choices=["ingest", "query"])
    ap.add_argument("--quick", action="store_true", help="small sizes, seconds not minutes")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        await serve(args.db, args.port, args.window)
        return 0
    if args.quick:
        args.servers, args.interfaces, args.window, args.windows = 200, 10, 2, 2
        args.day_servers, args.queries = 3, 10
        args.quick_day = True
    results = []
    with tempfile.TemporaryDirectory(prefix="tarsus-bench-stat-") as name:
        tmp = Path(name)
        for tag, run in (("ingest", ingest), ("query", day_query)):
            if args.only and args.only != tag:
                continue
            if tag == "query" and args.quick:
                args.window = 600  # a day of 10-minute windows: 144 per curve
            url = fresh_url(args.db, tmp, tag)
            try:
                results.append(await run(args, url))
            finally:
                if args.db is not None:
                    await drop_database(url)
            if tag == "query" and args.quick:
                args.window = 2
    if args.json:
        print(json.dumps(results))
    else:
        for r in results:
            print(json.dumps(r, indent=1))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(asyncio.run(main()))
