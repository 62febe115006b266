"""The console tested as a person uses it: a real Chromium (Debian's, driven by Playwright)
against a whole platform (the framework, its node agent, the console; free ports, SQLite).

In order, as one operator's session: log in with the admin password shown once; find things in
the service tree; deploy Hello (examples/hello); upload it and publish it, then a second version
built here, following each task live until it is done; restart it from its page and follow
that task; edit a config file, see the difference, push it and read each instance's answer;
open the charts; look at the nodes and the command that adds one, the users and the audit log;
and a developer is refused the pages of their betters. Every page looked at is also checked at
phone width (nothing wider than the screen, the navigation reachable).

Steps through pages that another part of the console brings are marked :func:`lands_with`:
expected to fail until the page is there, plain tests after. ``scripts/screenshots.py`` runs
this module with ``TARSUS_SCREENSHOTS`` set to photograph the pages for docs/console.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from browser_support import (
    APP,
    DESKTOP,
    DEV_PASSWORD,
    PHONE,
    SERVER,
    Person,
    Site,
    chromium,
    lands_with,
)

from tarsus.testing import eventually_sync

pytestmark = pytest.mark.slow

NODE = "127.0.0.1"
WAIT_TASK = 120_000  # ms: a publish installs and starts a Python server on a loaded machine
#: the words a finished task shows (tarsus.ops.tasks)
FINISHED = re.compile(r"\b(done|failed|cancelled|partly done)\b")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    s = Site(tmp_path_factory.mktemp("browser"))
    try:
        yield s
    finally:
        s.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:  # first: no platform started when it must skip
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def admin(browser: object, site: Site) -> Iterator[Person]:  # the browser, then the site
    person = Person(browser, site)  # type: ignore[arg-type]
    try:
        yield person
    finally:
        person.close()


def _logged_in(person: Person) -> None:
    """Log the admin in if a previous step did not (each step can also run alone)."""
    person.open("/services")
    if "/login" in person.page.url:
        person.log_in("admin", person.site.admin_password or "")


def test_logs_in_with_the_password_shown_once(admin: Person, site: Site) -> None:
    page = admin.page
    admin.open("/services")
    assert page.url.startswith(f"{site.url}/login")  # not logged in: sent to log in
    admin.look("login")
    admin.log_in("admin", "not the password at all")
    assert "Wrong user name or password." in admin.text()
    admin.log_in("admin", site.admin_password or "")
    assert "Signed in as admin" in admin.text("header")
    assert admin.text("main h1") == "Services"


def test_finds_servers_in_the_tree_and_the_instance_list(admin: Person) -> None:
    _logged_in(admin)
    page = admin.page
    admin.open("/services")
    page.get_by_role("search").get_by_role("textbox").fill("no-such-server-anywhere")
    page.get_by_role("search").get_by_role("button", name="Search").click()
    page.wait_for_load_state()
    assert "Nothing to show." in admin.text("#instances")
    admin.open("/services")
    admin.look("services")


@lands_with("/deploy", "web-operate")
def test_deploys_hello(admin: Person, site: Site) -> None:
    _logged_in(admin)
    page = admin.page
    assert admin.open("/deploy").status == 200
    page.get_by_label("Application").fill(APP)
    page.get_by_label("Server", exact=True).fill(SERVER)
    page.get_by_label("Nodes", exact=False).fill(NODE)
    page.get_by_label("Name 1").fill("HelloObj")
    page.get_by_label("Port 1").fill(str(site.hello_port))
    admin.look("deploy")
    page.get_by_role("button", name="Deploy").click()
    page.wait_for_url(re.compile(f"/servers/{APP}/{SERVER}$"))
    row = page.get_by_role("row").filter(has_text=NODE)
    assert "inactive" in row.inner_text()  # deployed, not started: nothing published yet
    admin.look("server")


def _publish(admin: Person, site: Site, greeting: str, comment: str) -> str:
    """Upload Hello saying ``greeting`` on the publish page, publish it to every instance and
    follow the task on the page until it is done; the version (package id) published."""
    page = admin.page
    admin.open(f"/release/{APP}/{SERVER}")
    upload = page.locator("form#upload")
    upload.get_by_label("Package (.tgz)").set_input_files(str(site.hello_package(greeting)))
    upload.get_by_label("Comment").fill(comment)
    upload.get_by_role("button", name="Upload").click()
    package = page.get_by_role("row").filter(has_text=comment)
    package.wait_for()
    version = package.get_by_role("cell").first.inner_text().strip()
    assert version.isdigit(), package.inner_text()
    admin.open(f"/release/{APP}/{SERVER}")
    page.get_by_role("combobox", name=re.compile("^Version")).select_option(version)
    page.get_by_role("button", name="Publish", exact=True).click()
    page.wait_for_load_state()
    # the live progress view: the page follows the task by itself until it is done
    status = page.locator(".task-status, #task strong").first
    admin.wait_text(status, FINISHED, timeout=WAIT_TASK)
    assert status.inner_text().strip() == "done", admin.text()
    return version


@lands_with("/release/{app}/{server}", "web-release")
def test_publishes_a_second_version_and_watches_the_task_finish(admin: Person, site: Site) -> None:
    _logged_in(admin)
    page = admin.page
    assert admin.open(f"/release/{APP}/{SERVER}").status == 200
    site.hello_deployed()
    first = _publish(admin, site, "from the first upload", "first build")
    second = _publish(admin, site, "from the second upload", "second build")
    assert int(second) > int(first)
    # once the task is done the page shows what it did, without being asked to
    published = page.locator("form table").get_by_role("row").filter(has_text=NODE)
    version = published.get_by_role("cell").nth(4)  # tick, node, setting, present, version
    admin.wait_text(version, re.compile(f"^{second}$"), timeout=30_000)
    assert admin.text("section h2") == "The task"
    mine = page.locator("table").filter(has_text="Running on").get_by_role("row")
    assert NODE in mine.filter(has_text="second build").inner_text()
    admin.look("publish")
    admin.open(f"/services?application={APP}&server_name={SERVER}")
    row = page.locator("#instances").get_by_role("row").filter(has_text=NODE)
    cells = row.inner_text()
    assert "active" in cells and second in cells and "admin" in cells, cells


def _pid(admin: Person) -> str:
    """The pid the server's page shows for Hello on the node ("" while it has none)."""
    admin.open(f"/servers/{APP}/{SERVER}")
    row = admin.page.locator("#instances-form").get_by_role("row").filter(has_text=NODE)
    return row.get_by_role("cell").nth(4).inner_text().strip()


@lands_with("/servers/{app}/{server}", "web-operate")
def test_restarts_hello_and_watches_the_task_finish(admin: Person, site: Site) -> None:
    _logged_in(admin)
    page = admin.page
    eventually_sync(lambda: _pid(admin).isdigit(), "Hello's pid on its page", timeout=60)
    before = _pid(admin)
    instances = page.locator("#instances-form")
    instances.get_by_role("checkbox", name=NODE).check()
    instances.get_by_role("button", name="Restart").click()
    page.wait_for_url(re.compile(r"/tasks/\w+$"))  # the task's own page, following it
    status = page.locator(".task-status").first
    admin.wait_text(status, FINISHED, timeout=WAIT_TASK)
    assert status.inner_text().strip() == "done", admin.text()
    row = page.get_by_role("row").filter(has_text=f"{SERVER}@{NODE}")
    assert "restart" in row.inner_text() and "100%" in row.inner_text()
    admin.look("task")
    eventually_sync(
        lambda: _pid(admin) not in ("", before), "a new pid on the server's page", timeout=60
    )


@lands_with("/configs/{app}/{server}", "web-release")
def test_edits_a_config_pushes_it_and_reads_the_answers(admin: Person, site: Site) -> None:
    _logged_in(admin)
    site.hello_deployed()
    page = admin.page
    assert admin.open(f"/configs/{APP}/{SERVER}").status == 200
    add = page.locator("form").filter(has=page.get_by_role("button", name="Add"))
    add.get_by_label("File").fill("hello.conf")
    add.get_by_label("Reason").fill("first settings")
    add.get_by_label("Content").fill("<hello>\n  greeting = hi\n  times = 1\n</hello>\n")
    add.get_by_role("button", name="Add").click()
    page.wait_for_load_state()
    assert admin.text("main h1").startswith("hello.conf")  # the new file's own page
    page.get_by_label("Content").fill("<hello>\n  greeting = hello\n  times = 1\n</hello>\n")
    page.get_by_label("Reason").fill("a warmer greeting")
    page.get_by_role("button", name="Save").click()
    page.wait_for_load_state()
    history = page.get_by_role("row").filter(has_text="a warmer greeting")
    assert history.count() == 1
    page.get_by_role("link", name="diff to previous").first.click()
    page.wait_for_load_state()
    diff = admin.text()
    assert "greeting = hi" in diff and "greeting = hello" in diff
    admin.look("config-diff")
    page.get_by_role("button", name="Push hello.conf").click()
    page.wait_for_load_state()
    answers = page.get_by_role("region", name="Instances' answers")
    assert NODE in answers.inner_text() and "loaded" in answers.inner_text()


@lands_with("/monitor/{app}/{server}/stats", "web-observe")
def test_opens_the_charts(admin: Person, site: Site) -> None:
    _logged_in(admin)
    page = admin.page
    site.report_calls()
    stats = f"/monitor/{APP}/{SERVER}/stats"

    def calls() -> int:  # today's calls in the table beside the charts, as a person reloads
        assert admin.open(stats).status == 200
        column = page.locator("table.numbers tr > td:first-of-type").all_inner_texts()
        return sum(int(n) for n in column if n.strip().isdigit())

    eventually_sync(lambda: calls() >= 120, "the 120 calls reported on the page", timeout=60)
    charts = page.locator("#stat-charts figure.chart")
    admin.wait_text(charts.first, re.compile("Calls"), timeout=30_000)
    titles = charts.all_inner_texts()
    assert len(titles) == 4, titles  # calls, average time, failure and timeout rates
    assert page.locator("#stat-charts canvas").first.bounding_box() is not None
    admin.look("charts")


@lands_with("/nodes/add", "web-operate")
def test_sees_the_node_alive_and_the_command_that_adds_one(admin: Person, site: Site) -> None:
    _logged_in(admin)
    assert admin.open("/nodes").status == 200
    page = admin.page
    row = page.get_by_role("row").filter(has_text=NODE)
    assert "alive" in row.inner_text()
    admin.look("nodes")
    page.get_by_role("link", name="Add a node").click()
    page.wait_for_url(re.compile("/nodes/add$"))
    command = admin.text("#install-command")
    assert command == f"curl -fsS {site.url}/install/node.sh | sh", command  # as reached here
    assert "alive" in page.get_by_role("row").filter(has_text=NODE).inner_text()
    admin.look("add-node")


def test_users_and_the_audit_log(admin: Person) -> None:
    _logged_in(admin)
    page = admin.page
    admin.open("/users")
    assert page.get_by_role("row").filter(has_text="developer@Test").count() == 1
    admin.look("users")
    admin.open("/audit")
    failed = page.get_by_role("row").filter(has_text="login.failed")
    assert failed.count() >= 1  # the wrong password of the first step, recorded
    admin.look("audit")


def test_navigation_folds_behind_a_menu_on_a_phone(admin: Person) -> None:
    _logged_in(admin)
    page = admin.page
    users = page.locator("nav").get_by_role("link", name="Users")
    menu = page.get_by_role("button", name="Menu")
    assert users.is_visible() and not menu.is_visible()  # at 1280 px: beside the page
    page.set_viewport_size(PHONE)  # type: ignore[arg-type]
    try:
        admin.open("/services")
        assert not users.is_visible()  # folded away, the page first
        menu.click()
        assert menu.get_attribute("aria-expanded") == "true"
        users.click()
        page.wait_for_url(re.compile("/users$"))
        assert admin.text("main h1") == "Users"
        page.get_by_role("button", name="Menu").click()
        admin.look("menu", desktop=False)
    finally:
        page.set_viewport_size(DESKTOP)  # type: ignore[arg-type]


def test_a_developer_is_refused_what_their_role_may_not_see(browser: object, site: Site) -> None:
    dev = Person(browser, site)  # type: ignore[arg-type]
    try:
        dev.log_in("dev", DEV_PASSWORD)
        assert "Signed in as dev" in dev.text("header")
        nav = dev.text("nav")
        assert "Services" in nav and "Users" not in nav and "Audit" not in nav
        for path in ("/users", "/audit"):
            answer = dev.open(path)
            assert answer.status == 403, path
            assert dev.text("main h1") == "Refused"
            assert "dev may not admin" in dev.text()
        dev.look("refused")
    finally:
        dev.close()
