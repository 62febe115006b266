"""The console as a person uses it: Debian's Chromium driven by Playwright over a whole platform.

* :class:`Site` — the framework services with their node agent (:class:`AllInOne`, SQLite, free
  ports) and the console over the same store (real uvicorn on a free port), its ``admin``
  password generated and shown once as ``tarsus up`` shows it, plus a ``dev`` user (developer
  on ``Test``);
* :func:`chromium` — one browser for a test module (skips with the reason when it cannot run
  here; fails in CI, ``CI=true``, where ``scripts/setup`` installs it);
* :class:`Person` — a browser tab with what a person does and notices: open a page, look at it
  (every page looked at is checked at phone width: nothing wider than the screen; and
  photographed when ``TARSUS_SCREENSHOTS`` names a folder, see ``scripts/screenshots.py``);
* :func:`lands_with` — a step written against a page that another part of the console brings:
  expected to fail (strictly) while that page is not there, a plain test once it is.

Used by tests/web/test_browser.py and scripts/screenshots.py; docs/console.md.
"""

from __future__ import annotations

import os
import re
import shutil
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tarsus.codec.constants import ADMIN_REG_OBJ, PATCH_OBJ, STAT_OBJ
from tarsus.framework.admin import AdminSettings
from tarsus.framework.admin.inventory import Inventory
from tarsus.framework.allinone import AllInOne, AllInOneSettings
from tarsus.ops.access import Actor
from tarsus.ops.platform import Platform
from tarsus.ops.users import create_user
from tarsus.package import open_package
from tarsus.protocol.gen import StatF
from tarsus.rpc.communicator import Communicator
from tarsus.store.servers import AdapterSpec, ServerSpec
from tarsus.testing import LoopThread, eventually_sync, framework_ports, free_port
from tarsus.web.pages import routers
from tarsus.web.server import WebServer
from tarsus.web.settings import WebSettings

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page

ROOT = Path(__file__).resolve().parents[2]
HELLO = ROOT / "examples" / "hello"
#: the example server the session deploys, publishes and configures
APP, SERVER = "Test", "HelloServer"
CHROMIUM = Path(os.environ.get("TARSUS_CHROMIUM", "/usr/bin/chromium"))
#: flags that let Chromium run headless in a container, and keep it off the network
#: (no updates, no sync, no QUIC probes): it only ever talks to the console on 127.0.0.1
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
DEV_PASSWORD = "a-long-enough-password"
#: the page's width, the screen's, and the outermost elements that stick out past its right edge
WIDER_THAN_THE_SCREEN = """() => {
  const screen = window.innerWidth, out = [];
  for (const el of document.body.querySelectorAll("*")) {
    if (el.getBoundingClientRect().right > screen + 1 && !out.some(o => o.contains(el))
        && !(el.closest(".scroll") && el.closest(".scroll") !== el)) out.push(el);
  }
  const name = el => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
    + (typeof el.className === "string" && el.className
       ? "." + el.className.split(" ").join(".") : "");
  return [document.documentElement.scrollWidth, screen, out.slice(0, 5).map(name)];
}"""
#: resolves once the browser has drawn two frames (a resize handled, its result painted)
NEXT_FRAME = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"
#: a folder to photograph the pages into (scripts/screenshots.py sets it), else None
SHOTS = Path(os.environ["TARSUS_SCREENSHOTS"]) if os.environ.get("TARSUS_SCREENSHOTS") else None


# ---------------------------------------------------------------------------------------------
# pages that land with other parts of the console


def page_paths() -> set[str]:
    """The paths of every page the console serves (its page routers, found as the app finds
    them)."""
    return {str(getattr(r, "path", "")) for router in routers() for r in router.routes}


def lands_with(path: str, part: str) -> pytest.MarkDecorator:
    """For a step through the page ``path`` that ``part`` of the console brings: while the
    console has no such page, the step is expected to fail (strictly: passing without it is an
    error); once it has, the step is an ordinary test."""
    return pytest.mark.xfail(
        path not in page_paths(), reason=f"{path} lands with {part}", strict=True, run=True
    )


# ---------------------------------------------------------------------------------------------
# the platform


class Site:
    """The framework (registry, admin registry, package store, config center, monitoring and
    its node agent in one process) and the console, on free ports; :meth:`close` stops all."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.loop = LoopThread("browser-site")
        self.hello_port = free_port()
        ports = framework_ports()
        self.settings = AllInOneSettings(
            data_dir=root / "framework",
            ports=ports,
            admin=AdminSettings(patch_poll_interval=0.05, ready_poll_interval=0.1),
            stat_window=1,  # call statistics on the charts within a second of their report
        )
        self.framework = AllInOne(self.settings)
        self.web: WebServer | None = None
        try:
            self.loop.run(self.framework.start())
            assert self.framework.store is not None
            self.store = self.framework.store
            web = WebSettings(
                data_dir=root / "framework",
                port=0,
                locator=self.settings.locator,
                admin=f"{ADMIN_REG_OBJ}@tcp -h 127.0.0.1 -p {ports.admin}",
                patch=f"{PATCH_OBJ}@tcp -h 127.0.0.1 -p {ports.patch}",
                rpc_timeout_ms=20000,
                poll_interval=0.2,
                publish_wait=120,
            )
            self.web = WebServer(web, store=self.store)
            self.loop.run(self.web.start())
            self.url = self.web.url
            #: generated at the first start and shown once (``tarsus up`` prints it)
            self.admin_password = self.web.admin_password
            assert self.admin_password, "the console made no admin password"
            self.loop.run(
                create_user(
                    Platform(self.store),
                    Actor.local("test"),
                    "dev",
                    DEV_PASSWORD,
                    [("developer", "Test")],
                )
            )
            self._wait_node()
        except BaseException:
            self.close()
            raise

    def _wait_node(self) -> None:
        node = self.settings.host

        def connected() -> bool:
            channels = self.framework.channels
            return channels is not None and channels.connected(node)

        eventually_sync(connected, f"node {node} connected", timeout=90)

    def hello_deployed(self) -> None:
        """Hello deployed on the node (inactive) unless it is: for the steps after the deploy
        step when the deploy page is not there to do it."""

        async def deploy() -> None:
            if await self.store.servers.list(APP, SERVER):
                return
            spec = ServerSpec(APP, SERVER, self.settings.host)
            obj = AdapterSpec(
                f"{APP}.{SERVER}.HelloObj", f"tcp -h 127.0.0.1 -p {self.hello_port} -t 60000"
            )
            await Inventory(self.store).deploy(spec, [obj], user="test")

        self.loop.run(deploy())

    def report_calls(self) -> None:
        """Calls of Hello's ``sayHello`` reported to tars.tarsstat, as its callers' clients
        report them (a caller reports once a minute at most: this does not wait)."""

        async def report() -> None:
            async with Communicator(self.settings.locator, cache_dir=None) as comm:
                stat = comm.string_to_proxy(StatF.StatFProxy, STAT_OBJ)
                head = StatF.StatMicMsgHead(
                    masterName="Test.Caller", slaveName=f"{APP}.{SERVER}",
                    interfaceName="sayHello", masterIp="127.0.0.1", slaveIp="127.0.0.1",
                    slavePort=self.hello_port, returnValue=0,
                )  # fmt: skip
                body = StatF.StatMicMsgBody(
                    count=120, timeoutCount=2, execCount=3, intervalCount={100: 120},
                    totalRspTime=600, maxRspTime=20, minRspTime=1,
                )  # fmt: skip
                await stat.reportMicMsg({head: body}, True)

        self.loop.run(report())

    def hello_package(self, greeting: str) -> Path:
        """examples/hello saying ``greeting``, packed as ``tarsus package`` packs it: the file
        a person uploads."""
        src = self.root / "src" / greeting.replace(" ", "-")
        shutil.copytree(HELLO, src)
        server = src / "server.py"
        server.write_text(server.read_text().replace("from Python", greeting))
        archive = open_package(str(src), src.parent / f"out-{src.name}").archive
        with tarfile.open(archive) as tar:  # what was packed is what was asked for
            assert any(m.name.endswith("server.py") for m in tar.getmembers())
        return Path(archive)

    def close(self) -> None:
        try:
            if self.web is not None:
                self.loop.run(self.web.stop())
            self.loop.run(self.framework.stop())
        finally:
            self.loop.close()


# ---------------------------------------------------------------------------------------------
# the browser


def browser_missing() -> str | None:
    """Why no browser can run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install -e '.[dev]')"
    if not CHROMIUM.is_file():
        return f"{CHROMIUM} is not installed (scripts/setup as root: apt-get install chromium)"
    return None


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, for the duration of a block. Skipped with the reason when
    it cannot run here; in CI (``CI=true``) that is a failure: setup must have installed it."""
    missing = browser_missing()
    if missing is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"the browser tests cannot run in CI: {missing}")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class Person:
    """One person's browser tab on the console (its own cookies)."""

    def __init__(self, browser: Browser, site: Site) -> None:
        self.site = site
        self.context = browser.new_context(viewport=DESKTOP, base_url=site.url)  # type: ignore[arg-type]
        self.context.set_default_timeout(30_000)
        self.page: Page = self.context.new_page()

    def close(self) -> None:
        self.context.close()

    def open(self, path: str) -> Any:
        """Go to ``path`` as a typed address; the answer (its ``.status``)."""
        response = self.page.goto(path)
        assert response is not None, path
        return response

    def log_in(self, uid: str, password: str) -> None:
        page = self.page
        page.goto("/login")
        page.get_by_label("User name").fill(uid)
        page.get_by_label("Password", exact=True).fill(password)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_load_state()

    def wait_text(self, locator: Locator, pattern: re.Pattern[str], timeout: float) -> None:
        """Wait until what ``locator`` shows matches ``pattern`` (found again each time: a
        part of the page htmx replaces is followed)."""
        from playwright.sync_api import expect

        expect(locator).to_have_text(pattern, timeout=timeout)

    def text(self, selector: str = "main") -> str:
        return self.page.locator(selector).inner_text()

    def look(self, name: str, desktop: bool = True) -> None:
        """Look at the page: at phone width nothing is wider than the screen (a table scrolls
        inside its box instead); photographed at both widths when asked (``SHOTS``)."""
        page = self.page
        page.wait_for_load_state()
        if SHOTS is not None and desktop:
            page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)
        page.set_viewport_size(PHONE)  # type: ignore[arg-type]
        try:
            page.evaluate(NEXT_FRAME)  # the page's own resize handlers (the charts) have run
            wide, screen, culprits = page.evaluate(WIDER_THAN_THE_SCREEN)
            assert wide <= screen, (
                f"{name}: the page is {wide} px wide on a {screen} px phone; too wide: {culprits}"
            )
            if SHOTS is not None:
                page.screenshot(path=str(SHOTS / f"{name}-phone.png"), full_page=False)
        finally:
            page.set_viewport_size(DESKTOP)  # type: ignore[arg-type]
