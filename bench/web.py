"""The console at scale: the instance list of 10,000 instances on 1,000 nodes.

A store (SQLite in a temporary directory, or ``--db``) gets ``--instances`` rows of
``t_server_conf`` over ``--nodes`` nodes (100 applications x 10 servers x 10 instances at full
size). ``tarsus web`` serves it (real uvicorn on a free port, in a thread of this process with
its own event loop); an admin logged in asks, ``--requests`` times one after the other:

* the first page of the instance list as a page (``GET /services``: tree + table, HTML) and
  through the API (``GET /api/v1/instances``): p50/p99 in ms. Must: p99 <= 300 ms; goal 100 ms;
* a search by node IP (``q=``), the same way;
* the bytes of the page with its assets (stylesheet, htmx). Must: <= 500 kB;

then ``--users`` users, each with its own session, browse at once (list pages, searches,
the tree, the API), ``--pages`` requests each: every answer must be a 200.

    .venv/bin/python bench/web.py                                  # SQLite, full size
    .venv/bin/python bench/web.py --db mysql://root@127.0.0.1:3306/bench_web
    .venv/bin/python bench/web.py --quick --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

from tarsus.ops.access import Actor  # noqa: E402
from tarsus.ops.platform import Platform  # noqa: E402
from tarsus.ops.users import create_user  # noqa: E402
from tarsus.store import drop_database, open_store  # noqa: E402
from tarsus.store.schema import t_server_conf  # noqa: E402
from tarsus.testing import LoopThread  # noqa: E402
from tarsus.web.server import WebServer  # noqa: E402
from tarsus.web.settings import WebSettings  # noqa: E402

PASSWORD = "bench-password-123"


def _rows(instances: int, nodes: int) -> list[dict[str, Any]]:
    now = datetime.now().replace(microsecond=0)
    rows = []
    for i in range(instances):
        app, server = f"App{i // 100:03d}", f"Server{(i // 10) % 10}"
        node = f"10.{(i % nodes) // 250}.{(i % nodes) % 250}.{1 + i % 7}"
        rows.append(
            {
                "application": app,
                "server_name": server,
                "node_name": node,
                "node_group": "",
                "exe_path": "",
                "template_name": "tars.default",
                "setting_state": "active",
                "present_state": "active" if i % 13 else "inactive",
                "process_id": 10000 + i,
                "patch_version": str(1 + i % 5),
                "patch_user": "admin",
                "patch_time": now,
                "tars_version": "",
                "posttime": now,
                "run_type": "",
                "server_type": "tars_cpp",
            }
        )
    # (application, server_name, node_name) is unique: one instance per node per server
    seen: set[tuple[str, str, str]] = set()
    out = []
    for r in rows:
        key = (r["application"], r["server_name"], r["node_name"])
        while key in seen:
            r["node_name"] = r["node_name"] + "x"
            key = (r["application"], r["server_name"], r["node_name"])
        seen.add(key)
        out.append(r)
    return out


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _timed(client: httpx.Client, url: str, n: int, **params: Any) -> dict[str, float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = client.get(url, params=params)
        times.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200, (url, r.status_code, r.text[:200])
    return {"p50_ms": statistics.median(times), "p99_ms": _pct(times, 99)}


async def _browse(url: str, uid: str, pages: int, seed: int) -> tuple[int, int]:
    rnd = random.Random(seed)
    ok = bad = 0
    async with httpx.AsyncClient(base_url=url, timeout=60) as c:
        r = await c.post("/api/v1/session", json={"uid": uid, "password": PASSWORD})
        if r.status_code != 201:
            return 0, pages
        for _ in range(pages):
            choice = rnd.randrange(4)
            if choice == 0:
                r = await c.get("/services", params={"page": rnd.randint(1, 50)})
            elif choice == 1:
                r = await c.get(
                    "/services", params={"q": f"10.{rnd.randrange(4)}.{rnd.randrange(250)}"}
                )
            elif choice == 2:
                r = await c.get("/api/v1/tree", params={"q": f"App{rnd.randrange(100):03d}"})
            else:
                r = await c.get("/api/v1/instances", params={"page": rnd.randint(1, 200)})
            if r.status_code == 200:
                ok += 1
            else:
                bad += 1
    return ok, bad


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", default=None, help="store URL (default: SQLite in a temp dir)")
    ap.add_argument("--instances", type=int, default=10000)
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--pages", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="1,000 instances, fewer requests")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.instances, args.nodes, args.requests, args.users, args.pages = 1000, 100, 30, 10, 5
    result: dict[str, Any] = {
        "instances": args.instances,
        "nodes": args.nodes,
        "db": "sqlite" if args.db is None else "mysql",
    }
    with tempfile.TemporaryDirectory() as tmp, LoopThread("bench-web") as loop:
        pw = Path(tmp) / "pw"
        pw.write_text(PASSWORD + "\n")
        store = loop.run(open_store(args.db, data_dir=Path(tmp)), timeout=300)

        async def seed() -> None:
            rows = _rows(args.instances, args.nodes)
            async with store.begin() as conn:
                for i in range(0, len(rows), 1000):
                    await conn.execute(insert(t_server_conf), rows[i : i + 1000])
            root = Actor.local("bench")
            await create_user(Platform(store), root, "admin", PASSWORD, [("admin", "*")])
            for u in range(args.users):
                await create_user(Platform(store), root, f"user{u}", PASSWORD, [("developer", "*")])

        loop.run(seed(), timeout=600)
        server = WebServer(
            WebSettings(data_dir=Path(tmp), port=0, admin_password_file=pw), store=store
        )
        loop.run(server.start())
        try:
            with httpx.Client(base_url=server.url, timeout=60) as admin:
                r = admin.post("/api/v1/session", json={"uid": "admin", "password": PASSWORD})
                assert r.status_code == 201, r.text
                # the floor: a session checked, nothing listed (client and server share the GIL)
                result["api_me"] = _timed(admin, "/api/v1/me", args.requests)
                result["page_first"] = _timed(admin, "/services", args.requests)
                result["api_first"] = _timed(admin, "/api/v1/instances", args.requests)
                result["page_search_ip"] = _timed(admin, "/services", args.requests, q="10.1.17")
                html = admin.get("/services").content
                assets = sum(
                    len(admin.get(p).content)
                    for p in ("/static/console.css", "/static/htmx.min.js")
                )
                result["page_bytes"] = len(html)
                result["page_with_assets_bytes"] = len(html) + assets

            async def crowd() -> list[tuple[int, int]]:
                return await asyncio.gather(
                    *(_browse(server.url, f"user{u}", args.pages, u) for u in range(args.users))
                )

            t0 = time.perf_counter()
            answers = asyncio.run(crowd())
            result["crowd"] = {
                "users": args.users,
                "requests": sum(a + b for a, b in answers),
                "errors": sum(b for _, b in answers),
                "seconds": round(time.perf_counter() - t0, 2),
            }
        finally:
            loop.run(server.stop())
            loop.run(store.close())
            if args.db is not None:
                loop.run(drop_database(args.db))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key in ("api_me", "page_first", "api_first", "page_search_ip"):
            v = result[key]
            print(f"{key:<16} p50 {v['p50_ms']:7.1f} ms   p99 {v['p99_ms']:7.1f} ms")
        print(
            f"page + assets    {result['page_with_assets_bytes'] / 1024:.0f} kB "
            f"(HTML {result['page_bytes'] / 1024:.0f} kB)"
        )
        c = result["crowd"]
        print(f"{c['users']} users        {c['requests']} requests in {c['seconds']} s, ", end="")
        print(f"{c['errors']} errors")
    ok = result["page_first"]["p99_ms"] <= 300 and result["page_with_assets_bytes"] <= 500 * 1024
    return 0 if ok and result["crowd"]["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
