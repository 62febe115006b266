"""Templates through our extension ``tarsus.AdminExt`` (TarsusAdmin.tars), served on the admin
registry's own object ``tars.tarsAdminRegistry.AdminRegObj``: a real AdminRegistry over the
``store`` fixture (SQLite and MariaDB), called through a generated ``AdminExtProxy`` over a
real socket, next to the upstream ``AdminRegProxy`` on the same address."""

from __future__ import annotations

from typing import Any

import pytest
from admin_support import NODE, Harness

from tarsus.framework.admin import ADMIN_SERVANT
from tarsus.protocol.gen import TarsusAdmin
from tarsus.store import ServerSpec

PARENT = "<tars>\n<application>\na=1\nb=2\n</application>\n</tars>\n"
CHILD = "<tars>\n<application>\nb=3\nc=4\n</application>\n</tars>\n"
TIME = "%Y-%m-%d %H:%M:%S"


@pytest.fixture
def ext(admin: Harness) -> Any:
    """An AdminExtProxy on the same object and address as ``admin.proxy`` (AdminReg)."""
    return admin.comm.string_to_proxy(
        TarsusAdmin.AdminExtProxy, f"{ADMIN_SERVANT}@{admin.endpoint}"
    )


def tpl(name: str, parent: str, profile: str) -> Any:
    return TarsusAdmin.ProfileTemplate(name=name, parentName=parent, profile=profile)


async def test_list_gives_every_template_with_parent_time_and_user(ext: Any, clock: Any) -> None:
    ret, templates, result = await ext.listProfileTemplates()
    assert (ret, result) == (0, "")
    names = [t.name for t in templates]
    assert names == sorted(names)
    by_name = {t.name: t for t in templates}
    # the built-in templates open_store installs: tars.default is its own parent (the root)
    root = by_name["tars.default"]
    assert (root.parentName, root.lastUser) == ("tars.default", "tarsus")
    assert root.postTime == clock.now.strftime(TIME)
    assert "<tars>" in root.profile
    assert by_name["tars.tarspython.default"].parentName == "tars.default"


async def test_set_then_read_raw_and_merged(admin: Harness, ext: Any, clock: Any) -> None:
    assert await ext.setProfileTemplate(tpl("test.parent", "", PARENT), "alice") == (0, "")
    when = clock.advance(60)
    assert await ext.setProfileTemplate(tpl("test.child", "test.parent", CHILD), "bob") == (0, "")

    ret, raw, result = await ext.getRawProfileTemplate("test.child")
    assert (ret, result) == (0, "")
    # as stored: its own text only, its parent named, who and when recorded by the server
    assert (raw.name, raw.parentName, raw.profile) == ("test.child", "test.parent", CHILD)
    assert (raw.postTime, raw.lastUser) == (when.strftime(TIME), "bob")

    # the upstream method on the same object sees the inheritance
    ret, text, desc = await admin.proxy.getProfileTemplate("test.child")
    assert (ret, desc) == (0, "(test.parent:OK)(test.child:OK)")
    lines = {line.strip() for line in text.splitlines()}
    assert {"a=1", "b=3", "c=4"} <= lines and "b=2" not in lines

    # replacing the parent's text changes what the child resolves to
    changed = PARENT.replace("a=1", "a=9")
    assert await ext.setProfileTemplate(tpl("test.parent", "", changed), "alice") == (0, "")
    _, text, _ = await admin.proxy.getProfileTemplate("test.child")
    lines = {line.strip() for line in text.splitlines()}
    assert {"a=9", "b=3", "c=4"} <= lines and "a=1" not in lines

    _, templates, _ = await ext.listProfileTemplates()
    listed = {t.name: (t.parentName, t.lastUser) for t in templates}
    assert listed["test.parent"] == ("", "alice")
    assert listed["test.child"] == ("test.parent", "bob")


@pytest.mark.parametrize(
    ("name", "parent", "profile", "reason"),
    [
        (
            "test.bad",
            "",
            "<tars>\n<a>\nx=1\n",
            "is not valid TC_Config: template 'test.bad', line 2",
        ),
        ("test.orphan", "test.nope", CHILD, "template 'test.nope' does not exist"),
        ("test.parent", "test.child", PARENT, "inherit in a loop"),
        ("", "", PARENT, "template_name must be 1 to 128 characters"),
    ],
    ids=["bad-tc-config", "missing-parent", "loop", "empty-name"],
)
async def test_bad_templates_are_refused_with_1007_and_nothing_changes(
    admin: Harness, ext: Any, name: str, parent: str, profile: str, reason: str
) -> None:
    await admin.store.templates.upsert("test.parent", "", PARENT)
    await admin.store.templates.upsert("test.child", "test.parent", CHILD)
    _, before, _ = await ext.listProfileTemplates()

    ret, result = await ext.setProfileTemplate(tpl(name, parent, profile), "alice")
    assert ret == 1007  # EM_TARS_PARAMETER_ERR
    assert reason in result
    _, after, _ = await ext.listProfileTemplates()
    assert after == before


async def test_unknown_and_empty_names(ext: Any) -> None:
    ret, raw, result = await ext.getRawProfileTemplate("test.nope")
    assert (ret, raw.name, result) == (-1, "", "template 'test.nope' not found")
    assert await ext.deleteProfileTemplate("test.nope") == (-1, "template 'test.nope' not found")
    assert (await ext.getRawProfileTemplate(""))[::2] == (1007, "the template name is empty")
    assert await ext.deleteProfileTemplate("") == (1007, "the template name is empty")


async def test_delete_and_what_it_refuses(admin: Harness, ext: Any) -> None:
    assert await ext.setProfileTemplate(tpl("test.parent", "", PARENT), "alice") == (0, "")
    assert await ext.setProfileTemplate(tpl("test.child", "test.parent", CHILD), "alice") == (0, "")
    await admin.registry.deploy(ServerSpec("Demo", "Hello", NODE, "tars_cpp", "test.child"), [])

    # a parent of another template, and a template a server is deployed with: 1004, kept
    ret, result = await ext.deleteProfileTemplate("test.parent")
    assert ret == 1004  # EM_TARS_SERVICE_STATE_ERR: in use
    assert "still used by templates test.child" in result
    ret, result = await ext.deleteProfileTemplate("test.child")
    assert ret == 1004
    assert "still used by servers Demo.Hello" in result
    assert (await ext.getRawProfileTemplate("test.child"))[0] == 0

    # once nothing uses them they go, child first
    await admin.store.servers.undeploy("Demo", "Hello", NODE)
    assert await ext.deleteProfileTemplate("test.child") == (0, "")
    assert await ext.deleteProfileTemplate("test.parent") == (0, "")
    assert (await ext.getRawProfileTemplate("test.child"))[0] == -1
    _, templates, _ = await ext.listProfileTemplates()
    assert not {"test.parent", "test.child"} & {t.name for t in templates}
    ret, text, desc = await admin.proxy.getProfileTemplate("test.child")
    assert (ret, text, desc) == (-1, "", "(test.child:template not found)")


async def test_upstream_functions_are_unchanged_on_the_shared_object(admin: Harness) -> None:
    """The servant answers AdminReg's functions exactly as declared, plus AdminExt's."""
    upstream = admin.proxy._tars_ops_
    served = type(admin.registry.servant)._tars_ops_
    assert all(served[name] is op for name, op in upstream.items())
    assert set(served) - set(upstream) == set(TarsusAdmin.AdminExtProxy._tars_ops_)
    assert await admin.proxy.getVersion() == (0, admin.registry.settings.framework_version)


@pytest.mark.parametrize(
    ("name", "parent", "what"),
    [
        ("tars.default", "tars.default", "overwrite"),
        ("tars.tarspython.default", "", "re-parent"),
    ],
)
async def test_changing_a_builtin_template_needs_force(
    ext: Any, name: str, parent: str, what: str
) -> None:
    _, before, _ = await ext.getRawProfileTemplate(name)
    profile = PARENT if what == "overwrite" else before.profile
    ret, result = await ext.setProfileTemplate(tpl(name, parent, profile), "mallory")
    assert ret == 1007
    assert f"template {name!r} is built in" in result and f"to {what} it" in result
    assert "--force" in result
    _, after, _ = await ext.getRawProfileTemplate(name)
    assert (after.parentName, after.profile) == (before.parentName, before.profile)

    # unchanged text and parent: nothing to force
    same = tpl(name, before.parentName, before.profile)
    assert await ext.setProfileTemplate(same, "alice") == (0, "")

    assert await ext.forceProfileTemplate(tpl(name, parent, profile), "alice") == (0, "")
    _, forced, _ = await ext.getRawProfileTemplate(name)
    assert (forced.parentName, forced.profile, forced.lastUser) == (parent, profile, "alice")
