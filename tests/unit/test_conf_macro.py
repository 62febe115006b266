"""``${macro}`` expansion, and a server config generated end to end as tarsnode generates it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tarsus.conf import (
    NODE_MACROS,
    ConfigError,
    TCConfig,
    builtin_lookup,
    expand,
    macros_in,
    merge_profile,
    node_macros,
    parse,
    resolve_template,
)

FIXTURES = Path(__file__).parent / "conf_fixtures"
SERVER = "/tars/application/server"


def test_known_macros_are_replaced_unknown_ones_kept() -> None:
    text = "app = ${app}\nx = ${unknown}\nboth = ${app}.${server}\nempty = ${}\n"
    out = expand(text, {"app": "Test", "server": "Hello"})
    assert out == "app = Test\nx = ${unknown}\nboth = Test.Hello\nempty = ${}\n"


def test_names_are_matched_exactly_like_upstreams_string_replace() -> None:
    macros = {"app": "Test", "config-center-port": "0"}
    assert expand("${ app }|${APP}|$app|${app", macros) == "${ app }|${APP}|$app|${app"
    assert expand("${${app}}", macros) == "${Test}"
    assert expand("p=${config-center-port}", macros) == "p=0"


def test_values_are_escaped_as_config_values() -> None:
    out = expand("<d>\nenv = ${env}\n</d>\n", {"env": "A=1\nB=2\\"})
    assert out == "<d>\nenv = A\\=1\\nB\\=2\\\\\n</d>\n"
    assert parse(out).get("/d<env>") == "A=1\nB=2\\"
    # a value cannot inject a line, a domain or a key
    sneaky = expand("<d>\nk = ${v}\n</d>\n", {"v": "x\nevil = 1"})
    assert parse(sneaky).params("/d") == {"k": "x\nevil = 1"}
    # upstream's reverse_parse refuses '<' and '>' in a macro value, and so do we
    with pytest.raises(ConfigError, match="macro"):
        expand("k = ${v}", {"v": "<tag>"})


def test_raw_expansion_for_the_nodes_own_template() -> None:
    assert expand("k = ${v}", {"v": "a=b"}, escape_values=False) == "k = a=b"


def test_expansion_is_a_single_pass() -> None:
    assert expand("${a}", {"a": "${b}", "b": "no"}, escape_values=False) == "${b}"


def test_macros_in_lists_each_name_once_in_order() -> None:
    assert macros_in("${b} ${a} ${b} ${} $x") == ["b", "a", ""]


def test_node_macros_compute_what_tarsnode_computes() -> None:
    macros = node_macros(
        app="Test",
        server="HelloServer",
        node_name="10.0.0.5",
        local_ip="10.0.0.5",
        local="tcp -h 127.0.0.1 -p 31457 -t 10000",
        exe_file="/data/Test.HelloServer/bin//HelloServer",
        exe_path="/data/Test.HelloServer/./bin/",
        server_dir="/data/Test.HelloServer/",
        log_path="/usr/local/app/tars/app_log",
    )
    assert macros["modulename"] == "Test.HelloServer"
    assert macros["serverid"] == "Test.HelloServer"
    assert macros["exe"] == "/data/Test.HelloServer/bin/HelloServer"
    assert macros["basepath"] == "/data/Test.HelloServer/bin/"
    assert macros["datapath"] == "/data/Test.HelloServer/data/"
    assert macros["mainclass"] == "com.qq.test.helloserver.HelloServer"
    assert (macros["enableset"], macros["setdivision"]) == ("n", "NULL")
    assert macros["asyncthread"] == "3"
    assert macros["config-center-port"] == "0"
    # no locator known, no private key: those stay as ${...} in the file, as upstream leaves them
    assert "locator" not in macros and "priKey" not in macros
    assert set(macros) | {"locator", "priKey"} == set(NODE_MACROS)

    in_set = node_macros(
        app="A",
        server="S",
        node_name="n",
        local_ip="1.2.3.4",
        local="l",
        exe_file="/e",
        exe_path="/srv/app",
        server_dir="/d",
        log_path="/l",
        locator="tars.tarsregistry.QueryObj@tcp -h 1.2.3.4 -p 17890",
        set_id="mtt.s.1",
        private_key="k",
    )
    assert (in_set["enableset"], in_set["setdivision"]) == ("y", "mtt.s.1")
    assert in_set["locator"].endswith("-p 17890")
    assert in_set["priKey"] == "k"
    assert in_set["basepath"] == "/srv/app/"


def test_generating_a_server_config_as_tarsnode_does() -> None:
    """Template chain + private profile, macros expanded, joined over the node's own keys."""
    template = resolve_template("tars.tarspython.default", builtin_lookup)
    private = (FIXTURES / "Test.HelloServer.profile").read_text(encoding="utf-8")
    profile = merge_profile(template, private)  # what the registry sends in ServerDescriptor

    macros = node_macros(
        app="Test",
        server="HelloServer",
        node_name="10.0.0.5",
        local_ip="10.0.0.5",
        local="tcp -h 127.0.0.1 -p 31457 -t 10000",
        exe_file="/usr/local/app/tars/tarsnode/data/Test.HelloServer/bin/HelloServer",
        exe_path="/usr/local/app/tars/tarsnode/data/Test.HelloServer/bin/",
        server_dir="/usr/local/app/tars/tarsnode/data/Test.HelloServer",
        log_path="/usr/local/app/tars/app_log",
        locator="tars.tarsregistry.QueryObj@tcp -h 10.0.0.1 -p 17890:tcp -h 10.0.0.2 -p 17890",
    )
    generated = TCConfig()
    generated.insert_params(
        SERVER, {"node": "tars.tarsnode.ServerObj@tcp -h 10.0.0.5 -p 19386 -t 60000"}
    )
    adapters = {
        "Test.HelloServer.HelloObjAdapter": ("10.0.0.0/8;192.168.1.7", 20001, "tars", 5),
        "Test.HelloServer.PingObjAdapter": ("", 20002, "not_tars", 1),
    }
    # the node adds adapters in reverse name order, each with its keys sorted
    for name, (allow, port, protocol, threads) in sorted(adapters.items(), reverse=True):
        generated.insert_params(
            f"{SERVER}/{name}",
            {
                "allow": allow,
                "endpoint": f"tcp -h 10.0.0.5 -p {port} -t 60000",
                "maxconns": "200000",
                "protocol": protocol,
                "queuecap": "10000",
                "queuetimeout": "60000",
                "servant": name.removesuffix("Adapter"),
                "threads": str(threads),
            },
        )
    generated.join(parse(expand(profile.tostr(), macros)), overwrite=True)

    expected = (FIXTURES / "Test.HelloServer.config.conf").read_text(encoding="utf-8")
    assert generated.tostr() == expected
