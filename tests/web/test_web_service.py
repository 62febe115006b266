"""``tars.tarsweb``: the HTTP app as a framework service of its own (tarsus/web/service.py).

Its config as the node generates it from the row ``tarsus up --processes`` records: the
process answers HTTP on the port of its profile and stops on SIGTERM; a port that is taken, or
a profile it cannot use, is refused with a message naming the problem. A secured install's
profile gives it the keys it signs with and hands joining nodes. A run without the web sets an
earlier run's row inactive, so that no node starts it; one an earlier run left running is
recognised (its port is its own, for the node to adopt). (tests/framework/test_up_processes.py
runs it under a real node.)
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tarsus.conf import ConfigError, TCConfig
from tarsus.framework.allinone import (
    AllInOneSettings,
    framework_profile,
    left_running,
    record_framework,
)
from tarsus.framework.node.cache import CacheEntry, NodeCache
from tarsus.framework.node.process import process_create_time
from tarsus.framework.node.settings import NodeSettings
from tarsus.framework.security import SECURED_OBJECTS, FrameworkAuth
from tarsus.protocol.gen import RegistryDescriptor
from tarsus.rpc.application import ServerConfig
from tarsus.rpc.auth import Credentials
from tarsus.store import Store, open_store
from tarsus.testing import eventually_sync, free_port
from tarsus.web.service import WEB_SPEC, WebService


def node_config(settings: AllInOneSettings, admin_port: int = 0) -> str:
    """The row's profile with the keys a node adds (tarsus/framework/node/config.py)."""
    server = "    <server>\n      app = tars\n      server = tarsweb\n      localip = 127.0.0.1\n"
    if admin_port:
        server += f"      local = tcp -h 127.0.0.1 -p {admin_port} -t 10000\n"
    client = "    <client>\n      locator = tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p 1\n"
    text = framework_profile(settings, WEB_SPEC).replace("    <server>\n", server, 1)
    if "    <client>\n" in text:
        return text.replace("    <client>\n", client, 1)
    return text.replace("  </application>", client + "    </client>\n  </application>", 1)


def from_text(text: str) -> WebService:
    tc = TCConfig.parse(text)
    return WebService.from_config(tc, ServerConfig.from_tcconfig(tc), store=object())  # type: ignore[arg-type]


def test_the_service_serves_its_port_and_refuses_a_taken_one(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "data"
    conf = tmp_path / "tars.tarsweb.config.conf"
    conf.write_text(node_config(AllInOneSettings(data_dir=data, web_port=port), free_port()))
    argv = [sys.executable, "-m", "tarsus.web", f"--config={conf}"]

    with socket.create_server(("127.0.0.1", port)):  # someone else has the port
        taken = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert taken.returncode == 1
    assert "cannot start tars.tarsweb" in taken.stderr and str(port) in taken.stderr

    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:

        def login_page() -> bool:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                return httpx.get(f"http://127.0.0.1:{port}/login", timeout=5).status_code == 200
            except httpx.TransportError:
                return False

        eventually_sync(login_page, "the web service to answer", timeout=60)
        assert (data / "web" / "token").is_file()  # the script token, under its datadir
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("port = 3000", "port = 70000"), "must be a port number"),
        (("port = 3000", "port = 0"), "must be a port number"),
        (("port = 3000", "port = 3000; rm -rf /"), "must be a port number"),
        (("    datadir = ", "    x = "), "datadir> is not set"),
        (("  </web>", "    nodekeys = 1\n  </web>"), r"one key pair \(0 found; missing: tars"),
    ],
)
def test_a_profile_it_cannot_use_is_refused(
    tmp_path: Path, edit: tuple[str, str], message: str
) -> None:
    text = node_config(AllInOneSettings(data_dir=tmp_path, web_port=3000))
    assert edit[0] in text
    with pytest.raises(ConfigError, match=message):
        from_text(text.replace(*edit))


def test_a_secured_install_gives_it_the_framework_keys(tmp_path: Path) -> None:
    keys = Credentials("AK", "SK")
    secured = AllInOneSettings(
        data_dir=tmp_path, web_port=3080, processes=True, auth=FrameworkAuth(keys)
    )
    # the node adds its own ServerObj domain, with the node's keys (not the framework's)
    node_domain = (
        "    <client>\n      <tars.tarsnode.ServerObj>\n        accesskey = NODE\n"
        "        secretkey = NODESECRET\n      </tars.tarsnode.ServerObj>\n"
    )
    web = from_text(node_config(secured).replace("    <client>\n", node_domain, 1)).settings
    assert (web.port, web.data_dir, web.host) == (3080, tmp_path.resolve(), "127.0.0.1")
    assert web.admin == "tars.tarsAdminRegistry.AdminRegObj@tcp -h 127.0.0.1 -p 12000 -e 1"
    # what node.sh hands joining nodes: the framework's locator as tarsus up has it (not the
    # node's config line, whose "-t 60000" would make a re-run of node.sh see a change)
    assert web.locator == "tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p 17890"
    assert set(web.security) == {*SECURED_OBJECTS, "tars.tarsnode.ServerObj"}
    assert {web.security[obj].credentials for obj in SECURED_OBJECTS} == {keys}
    assert web.node_auth is not None and web.node_auth.credentials == keys

    open_web = from_text(node_config(AllInOneSettings(data_dir=tmp_path, web_port=3000)))
    assert open_web.settings.security == {} and open_web.settings.node_auth is None
    assert open_web.settings.admin == "tars.tarsAdminRegistry.AdminRegObj@tcp -h 127.0.0.1 -p 12000"


async def test_a_run_without_the_web_sets_its_row_inactive(tmp_path: Path) -> None:
    store: Store = await open_store(None, data_dir=tmp_path)
    try:
        settings = AllInOneSettings(data_dir=tmp_path, web_port=3000)
        await record_framework(store, settings)
        row = await store.servers.get("tars", "tarsweb", "127.0.0.1")
        assert row is not None and row.setting_state == "active"
        await store.servers.update_present("127.0.0.1", "tars", "tarsweb", "active", 4242)

        settings.web_port = None  # tarsus up --no-web, or its port taken
        await record_framework(store, settings)
        row = await store.servers.get("tars", "tarsweb", "127.0.0.1")
        assert row is not None
        assert (row.setting_state, row.present_state, row.process_id) == ("inactive", "inactive", 0)
        assert await store.servers.get("tars", "tarsregistry", "127.0.0.1") is not None
    finally:
        await store.close()


def test_a_web_process_left_running_is_recognised(tmp_path: Path) -> None:
    settings = AllInOneSettings(data_dir=tmp_path, web_port=3000, processes=True)
    assert not left_running(settings, WEB_SPEC)  # no cache yet
    node_data = settings.node_dir / "data"
    where = NodeSettings(node_name="127.0.0.1", data_dir=node_data, log_dir=tmp_path / "log")
    leftover = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        created = process_create_time(leftover.pid)
        assert created is not None
        entry = CacheEntry(
            RegistryDescriptor.ServerDescriptor(application="tars", serverName="tarsweb"),
            enabled=True,
            pid=leftover.pid,
            create_time=created,
        )
        NodeCache(where.cache_file).put(WEB_SPEC.server_id, entry)
        assert left_running(settings, WEB_SPEC)
    finally:
        leftover.kill()
        leftover.wait()
    assert not left_running(settings, WEB_SPEC)  # gone: the port is someone else's
