"""A Node.js service written with ``@tars/rpc`` (hand-written servant, no tars2node), packed
as upstream packs one (``<Server>/package.json``, its ``node_modules``, its script), published
to our node through the admin registry: it reads its servants from ``TARS_CONFIG``, keeps
itself Active with ``ServerF.keepAlive``, answers by name, stops on ``AdminObj.shutdown``,
and comes back after a kill -9.

The npm modules are the interop peer's (``tests/interop/node/node_modules``, installed by
``scripts/setup``); without ``node`` or them the test skips.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from package_support import ROOT, Platform, pack, platform

import tarsus.idl
from tarsus.rpc.errors import TarsError
from tarsus.testing import eventually, free_port

APP, SERVER = "Test", "NodeServer"
Test = tarsus.idl.load(ROOT / "examples" / "hello" / "Hello.tars").Test
NODE_MODULES = ROOT / "tests" / "interop" / "node" / "node_modules"

#: Test.Hello.sayHello(string name, out string greeting) served with @tars/rpc.
SERVER_JS = """\
'use strict';
const Tars = require('@tars/rpc');
const TarsStream = require('@tars/stream');

function HelloImp() {}
HelloImp.prototype.initialize = function () {};
HelloImp.prototype.onDispatch = function (current, func, buf) {
  const os = new TarsStream.TarsOutputStream();
  if (func === 'tars_ping') { current.doResponse(os.getBinBuffer()); return 0; }
  if (func !== 'sayHello') return Tars.error.SERVER.FUNC_NOT_FOUND;
  const name = new TarsStream.TarsInputStream(buf).readString(1, true, '');
  os.writeInt32(0, 0);
  os.writeString(2, 'hello ' + name + ', from Node.js');
  current.doResponse(os.getBinBuffer());
  return 0;
};

const svr = new Tars.server();
svr.initialize(process.env.TARS_CONFIG, function (server) {
  server.addServant(HelloImp, server.Application + '.' + server.ServerName + '.HelloObj');
});
svr.start();
"""


@pytest.fixture
def node_modules() -> Path:
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    if not (NODE_MODULES / "@tars" / "rpc").is_dir():
        pytest.skip("tests/interop/node/node_modules is missing (run scripts/setup)")
    return NODE_MODULES


def nodejs_package(tmp: Path, node_modules: Path) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    package_json = {"name": "node-hello", "version": "1.0.0", "main": "server.js"}
    return pack(
        tmp / f"{SERVER}.tgz",
        {
            f"{SERVER}/package.json": json.dumps(package_json).encode(),
            f"{SERVER}/server.js": SERVER_JS.encode(),
            f"{SERVER}/node_modules": node_modules,
        },
        mode=0o644,
    )


async def say_hello(p: Platform) -> str:
    proxy = p.comm.string_to_proxy(Test.HelloProxy, f"{APP}.{SERVER}.HelloObj")

    async def call() -> str:
        ret, greeting = await proxy.sayHello("tars")
        assert ret == 0
        return str(greeting)

    return await eventually(call, "sayHello answered by name", ignoring=TarsError)


async def test_tars_rpc_service_runs_keeps_alive_answers_restarts(
    tmp_path: Path, node_modules: Path
) -> None:
    async with platform(tmp_path) as p:
        await p.deploy(APP, SERVER, "tars_nodejs", {"HelloObj": free_port()})
        ok, why = await p.publish(APP, SERVER, nodejs_package(tmp_path / "pkg", node_modules))
        assert ok, why
        await p.start(APP, SERVER)
        # Active only on keepAlive: the node hears from the service itself
        pid = await p.active_pid(APP, SERVER)
        assert await say_hello(p) == "hello tars, from Node.js"
        log = p.settings.node_dir / "app_log" / APP / SERVER / f"{APP}.{SERVER}.log"

        p.kill(pid)  # a crash: the node starts it again
        await p.active_pid(APP, SERVER, other_than=pid)
        assert await say_hello(p) == "hello tars, from Node.js"

        await p.stop(APP, SERVER)  # through AdminObj.shutdown, not a kill
        assert (await p.state(APP, SERVER))[0] == "inactive"
        assert "AdminObj.shutdown: exiting" in log.read_text(errors="replace")
