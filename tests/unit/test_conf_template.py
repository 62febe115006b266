"""Profile templates: inheritance as the registry resolves it, and the shipped templates."""

from __future__ import annotations

import textwrap

import pytest

from tarsus.conf import (
    ConfigError,
    TCConfig,
    TemplateCycleError,
    TemplateNotFoundError,
    builtin_lookup,
    load_builtin,
    merge_profile,
    parse,
    resolve_server_profile,
    resolve_template,
    template_chain,
)
from tarsus.conf.errors import TemplateError
from tarsus.conf.template import MAX_TEMPLATE_CHAIN, TemplateLookup
from tarsus.conf.templates import BUILTIN_PARENTS, builtin_names

SERVER = "/tars/application/server"
CLIENT = "/tars/application/client"


def store(templates: dict[str, tuple[str, str | None]]) -> TemplateLookup:
    """A lookup over ``{name: (text, parent)}``, as ``t_profile_template`` rows."""
    rows = {name: (textwrap.dedent(text), parent) for name, (text, parent) in templates.items()}
    return rows.get


# Three generations: grand (root, its own parent as upstream installs tars.default) <- parent <-
# child. Each sets some keys of its own and overrides some of its ancestors'.
THREE = store(
    {
        "grand": (
            """
            <tars>
              <application>
                <client>
                  sync-invoke-timeout = 3000
                  async-invoke-timeout = 5000
                </client>
                <server>
                  logLevel = DEBUG
                  logsize = 10M
                  lognum = 10
                </server>
              </application>
            </tars>
            """,
            "grand",
        ),
        "parent": (
            """
            <tars>
              <application>
                <server>
                  logsize = 50M
                  netthread = 2
                  <ParentOnly>
                    x = 1
                  </ParentOnly>
                </server>
              </application>
              <db>
                host = db.parent
              </db>
            </tars>
            """,
            "grand",
        ),
        "child": (
            """
            <tars>
              <application>
                <server>
                  logLevel = ERROR
                  netthread = 4
                </server>
              </application>
              <db>
                port = 3306
              </db>
            </tars>
            """,
            "parent",
        ),
    }
)


def test_three_levels_the_nearest_template_wins_each_key() -> None:
    cfg = resolve_template("child", THREE)
    server = cfg.params(SERVER)
    assert server["logLevel"] == "ERROR"  # child over grand
    assert server["netthread"] == "4"  # child over parent
    assert server["logsize"] == "50M"  # parent over grand
    assert server["lognum"] == "10"  # only in grand
    assert cfg.params(CLIENT) == {"sync-invoke-timeout": "3000", "async-invoke-timeout": "5000"}
    # domains are united at every level
    assert cfg.params(f"{SERVER}/ParentOnly") == {"x": "1"}
    assert cfg.params("/tars/db") == {"host": "db.parent", "port": "3306"}


def test_merge_order_is_the_order_upstream_produces() -> None:
    cfg = resolve_template("child", THREE)
    # ancestors' keys first; a key a descendant sets moves to that descendant's place
    assert cfg.keys(SERVER) == ["lognum", "logsize", "logLevel", "netthread"]
    assert cfg.domains("/tars/application") == ["client", "server"]
    assert cfg.domains("/tars") == ["application", "db"]


def test_a_template_without_parent_and_the_chain() -> None:
    assert template_chain("child", THREE)[0][0] == "child"
    assert [name for name, _ in template_chain("child", THREE)] == ["child", "parent", "grand"]
    orphan = store({"solo": ("<a>\nk = v\n</a>\n", None), "empty": ("<a>\n</a>\n", "")})
    assert resolve_template("solo", orphan).params("/a") == {"k": "v"}
    assert resolve_template("empty", orphan).domains("/") == ["a"]


def test_server_profile_is_merged_last_and_wins() -> None:
    template = resolve_template("child", THREE)
    profile = "<tars>\n<application>\n<server>\nlogLevel = WARN\nown = yes\n</server>\n"
    profile += "</application>\n</tars>\n"
    merged = merge_profile(template, profile)
    assert merged.get(f"{SERVER}<logLevel>") == "WARN"
    assert merged.get(f"{SERVER}<own>") == "yes"
    assert merged.get(f"{SERVER}<logsize>") == "50M"
    assert template.get(f"{SERVER}<logLevel>") == "ERROR"  # the template is not changed
    assert resolve_server_profile("child", profile, THREE) == merged
    assert merge_profile(template, parse(profile)) == merged
    assert merge_profile(template, "") == template


def test_a_loop_of_parents_is_an_error_naming_it() -> None:
    loop = store({"a": ("", "b"), "b": ("", "c"), "c": ("", "a")})
    with pytest.raises(TemplateCycleError, match="a -> b -> c -> a"):
        resolve_template("a", loop)
    with pytest.raises(TemplateCycleError, match="b -> c -> a -> b"):
        resolve_template("b", loop)


def test_missing_template_or_parent_is_a_clear_error() -> None:
    with pytest.raises(TemplateNotFoundError, match="template 'nope' does not exist"):
        resolve_template("nope", THREE)
    broken = store({"a": ("", "b"), "b": ("", "gone")})
    with pytest.raises(TemplateNotFoundError) as info:
        resolve_template("a", broken)
    assert str(info.value) == (
        "template 'b' names parent 'gone', which does not exist (chain: a -> b -> gone)"
    )
    assert isinstance(info.value, ConfigError)


def test_an_endless_chain_of_new_names_stops() -> None:
    def endless(name: str) -> tuple[str, str | None]:
        return "", name + "+"

    with pytest.raises(TemplateError, match=f"more than {MAX_TEMPLATE_CHAIN} ancestors"):
        resolve_template("t", endless)


def test_a_broken_template_is_named_in_the_error() -> None:
    bad = store({"ok": ("<a>\n</a>\n", None), "bad": ("<a>\n  x = \\q\n</a>\n", "ok")})
    with pytest.raises(TemplateError) as info:
        resolve_template("bad", bad)
    assert info.value.line == 2
    assert str(info.value).startswith("template 'bad', line 2: invalid escape")


# -- shipped templates -----------------------------------------------------------------------


def test_tars_default_has_upstreams_keys_and_defaults() -> None:
    cfg = resolve_template("tars.default", builtin_lookup)
    assert cfg.params("/tars/application") == {
        "enableset": "${enableset}",
        "setdivision": "${setdivision}",
    }
    assert cfg.params(CLIENT) == {
        "locator": "${locator}",
        "sync-invoke-timeout": "3000",
        "async-invoke-timeout": "5000",
        "refresh-endpoint-interval": "60000",
        "stat": "tars.tarsstat.StatObj",
        "property": "tars.tarsproperty.PropertyObj",
        "report-interval": "60000",
        "asyncthread": "${asyncthread}",
        "modulename": "${modulename}",
    }
    assert cfg.params(SERVER) == {
        "app": "${app}",
        "server": "${server}",
        "nodename": "${nodename}",
        "localip": "${localip}",
        "local": "${local}",
        "basepath": "${basepath}",
        "datapath": "${datapath}",
        "logpath": "${logpath}",
        "logsize": "10M",
        "lognum": "10",
        "logLevel": "DEBUG",
        "config": "tars.tarsconfig.ConfigObj",
        "notify": "tars.tarsnotify.NotifyObj",
        "log": "tars.tarslog.LogObj",
        "deactivating-timeout": "3000",
        "activating-timeout": "60000",
    }


def test_python_template_inherits_tars_default() -> None:
    assert BUILTIN_PARENTS["tars.tarspython.default"] == "tars.default"
    assert BUILTIN_PARENTS["tars.default"] == "tars.default"  # as upstream installs it
    python = resolve_template("tars.tarspython.default", builtin_lookup)
    default = resolve_template("tars.default", builtin_lookup)
    assert python.get(f"{SERVER}<python>") == "python3"
    python_only = python.copy()
    python_only.erase(f"{SERVER}<python>")
    assert python_only == default


def test_builtin_templates_load_by_name_only() -> None:
    assert builtin_names() == ["tars.default", "tars.tarspython.default"]
    for name in builtin_names():
        assert isinstance(parse(load_builtin(name)), TCConfig)
    with pytest.raises(KeyError):
        load_builtin("../__init__.py")
    assert builtin_lookup("tars.nope") is None
