"""Config generation (upstream CommandLoad): content, admin port, paths, atomic writes."""

from __future__ import annotations

import random
import socket
from pathlib import Path
from typing import Any

import pytest
from node_support import adapter, descriptor, make_settings, profile

from tarsus.conf import parse
from tarsus.framework.node import ConfigGenError, NodeSettings, generate_config, render_config
from tarsus.framework.node.config import (
    ADMIN_PORT_RANGE,
    RuntimeConfig,
    parse_env,
    pick_admin_port,
    server_layout,
    write_config,
)

GOLDEN = Path(__file__).parent / "golden"
LOCATOR = "tars.tarsregistry.QueryObj@tcp -h 10.0.0.1 -p 17890:tcp -h 10.0.0.2 -p 17890"


def golden_descriptor() -> Any:
    desc = descriptor(
        "Test",
        "HelloServer",
        adapters={
            "Test.HelloServer.HelloObjAdapter": adapter(
                "Test.HelloServer.HelloObjAdapter", "Test.HelloServer.HelloObj", 18601
            ),
            "Test.HelloServer.EchoObjAdapter": adapter(
                "Test.HelloServer.EchoObjAdapter", "Test.HelloServer.EchoObj", 18602
            ).replace(allowIp="10.0.0.0/8", threadNum="4", protocol=""),
        },
        server_lines="hearttimeout=60000\nenv=A=1|B=2",
    )
    return desc.replace(asyncThreadNum=3)


def golden_settings() -> NodeSettings:
    return NodeSettings(
        node_name="10.0.0.5",
        data_dir=Path("/srv/tars/tarsnode/data"),
        log_dir=Path("/srv/tars/app_log"),
        locator="tars.tarsregistry.QueryObj@tcp -h 10.0.0.1 -p 17890",
        node_endpoint="tcp -h 127.0.0.1 -p 19386 -t 60000",
        local_ip="10.0.0.5",
    )


def test_generated_config_matches_the_golden_file() -> None:
    generated = render_config(
        golden_descriptor(), golden_settings(), locator=LOCATOR, admin_port=31234
    )
    assert generated.text == (GOLDEN / "Test.HelloServer.config.conf").read_text()
    cfg = parse(generated.text)
    server = "/tars/application/server"
    node = "tars.tarsnode.ServerObj@tcp -h 127.0.0.1 -p 19386 -t 60000"
    assert cfg.get(f"{server}<node>") == node
    assert cfg.get(f"{server}<local>") == "tcp -h 127.0.0.1 -p 31234 -t 10000"
    assert cfg.get(f"{server}<basepath>") == "/srv/tars/tarsnode/data/Test.HelloServer/bin/"
    assert cfg.get(f"{server}<datapath>") == "/srv/tars/tarsnode/data/Test.HelloServer/data/"
    assert cfg.get(f"{server}<logpath>") == "/srv/tars/app_log"
    assert cfg.get("/tars/application/client<locator>") == LOCATOR
    assert cfg.get("/tars/application/client<asyncthread>") == "3"
    # one domain per adapter, keys in upstream's (sorted) order, protocol defaulted
    echo = f"{server}/Test.HelloServer.EchoObjAdapter"
    assert cfg.keys(echo) == [
        "allow",
        "endpoint",
        "maxconns",
        "protocol",
        "queuecap",
        "queuetimeout",
        "servant",
        "threads",
    ]
    assert cfg.get(f"{echo}<protocol>") == "tars"
    assert cfg.get(f"{echo}<allow>") == "10.0.0.0/8"
    assert cfg.get(f"{echo}<threads>") == "4"
    assert generated.ports == {18601, 18602, 31234}
    # what the node reads back: hearttimeout in milliseconds (docs/node.md, deliberately)
    assert generated.runtime.heart_timeout == 60.0
    assert generated.runtime.activating_timeout == 60.0
    assert generated.runtime.deactivating_timeout == 3.0
    assert generated.runtime.env == {"A": "1", "B": "2"}
    assert generated.runtime.local == "tcp -h 127.0.0.1 -p 31234 -t 10000"


def test_node_locator_is_used_without_a_registry_list_and_left_alone_without_any() -> None:
    settings = golden_settings()
    generated = render_config(golden_descriptor(), settings, admin_port=31234)
    assert parse(generated.text).get("/tars/application/client<locator>") == settings.locator
    bare = render_config(golden_descriptor(), settings.replace(locator=""), admin_port=31234)
    assert parse(bare.text).get("/tars/application/client<locator>") == "${locator}"


def test_admin_port_is_kept_across_regenerations(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    desc = golden_descriptor()
    first = generate_config(desc, settings)
    low, high = ADMIN_PORT_RANGE
    assert low <= first.admin_port < high
    assert first.written and first.layout.conf_file.exists()
    # a changed descriptor: new content, same admin port; the old file kept as .bak
    changed = desc.replace(adapters={k: v for k, v in desc.adapters.items() if "HelloObj" in k})
    second = generate_config(changed, settings)
    assert second.admin_port == first.admin_port
    assert second.written
    bak = first.layout.conf_file.with_name(first.layout.conf_file.name + ".bak")
    assert bak.read_text() == first.text
    # the same content again: nothing is written
    before = first.layout.conf_file.stat().st_mtime_ns
    third = generate_config(changed, settings)
    assert not third.written and third.admin_port == first.admin_port
    assert first.layout.conf_file.stat().st_mtime_ns == before


def test_new_admin_ports_avoid_used_and_busy_ones() -> None:
    low, high = ADMIN_PORT_RANGE
    # with every port but two taken by other servers, one of the two comes back
    avoid = set(range(low, high)) - {low + 7, low + 9}
    with socket.socket() as busy:  # and one of those two is in use on 127.0.0.1
        try:
            busy.bind(("127.0.0.1", low + 7))
        except OSError:
            pytest.skip("port in use already")
        busy.listen()
        assert pick_admin_port(avoid, rng=random.Random(1)) == low + 9
    with pytest.raises(ConfigGenError, match="no free admin port"):
        pick_admin_port(set(range(low, high)))


def test_paths_follow_upstream_rules(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    data = Path(settings.data_dir)
    plain = server_layout(descriptor("A", "B", server_type="tars_cpp"), settings)
    assert plain.server_dir == data / "A.B"
    assert plain.exe_file == str(data / "A.B" / "bin" / "B")
    assert plain.conf_file == data / "A.B" / "conf" / "A.B.config.conf"
    assert plain.log_file == Path(settings.log_dir) / "A" / "B" / "A.B.log"
    absolute = server_layout(
        descriptor("A", "B", base_path="/opt/b/", exe_path="tools/run", start_script="go.sh"),
        settings,
    )
    assert absolute.server_dir == Path("/opt/b")
    assert absolute.exe_file == "/opt/b/bin/tools/run"
    assert absolute.exe_path == Path("/opt/b/bin/tools")
    assert absolute.start_script == "/opt/b/bin/tools/go.sh"
    java = server_layout(descriptor("A", "J", server_type="tars_java"), settings)
    assert java.exe_file == "java"
    with pytest.raises(ConfigGenError, match="cannot name a directory"):
        server_layout(descriptor("A", "../etc"), settings)


def test_a_failure_writes_nothing(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    good = generate_config(golden_descriptor(), settings)
    before = good.layout.conf_file.read_bytes()
    broken = golden_descriptor().replace(
        adapters={"X": adapter("X", "Test.HelloServer.X", 1).replace(endpoint="tcp -h")}
    )
    with pytest.raises(ConfigGenError, match="adapter X"):
        generate_config(broken, settings)
    bad_profile = golden_descriptor().replace(profile="<tars>\n<application>\n")
    with pytest.raises(ConfigGenError, match="never closed"):
        generate_config(bad_profile, settings)
    assert good.layout.conf_file.read_bytes() == before
    assert not good.layout.conf_file.with_name(good.layout.conf_file.name + ".bak").exists()


def test_write_config_refuses_text_that_does_not_parse(tmp_path: Path) -> None:
    target = tmp_path / "x.conf"
    target.write_text("<a>\nk=v\n</a>\n")
    with pytest.raises(ValueError):
        write_config(target, "<a>\n")
    assert target.read_text() == "<a>\nk=v\n</a>\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.conf"]


def test_runtime_keys() -> None:
    assert parse_env(" A=1 ; B = two|C=x=y;;junk") == {"A": "1", "B": "two", "C": "x=y"}
    text = profile("hearttimeout=0\nenableworking=n\nactivating-timeout=abc")
    runtime = RuntimeConfig.from_config(parse(text))
    assert runtime.heart_timeout is None  # 0 / unset: the node's own default
    assert runtime.activating_timeout is None
    assert not runtime.enable_working


def test_admin_ports_avoid_the_kernels_outgoing_port_range() -> None:
    """An outgoing connection could take such a port before the server binds it (seen as a
    server failing to start again and again): ports outside that range come first."""
    import random

    from tarsus.framework.node.config import ADMIN_PORT_RANGE, _ephemeral_ports, pick_admin_port

    ephemeral = _ephemeral_ports()
    outside = [p for p in range(*ADMIN_PORT_RANGE) if p not in ephemeral]
    if not outside:
        return  # this machine's outgoing range covers the whole admin range: nothing to prefer
    for seed in range(20):
        assert pick_admin_port(set(), rng=random.Random(seed)) not in ephemeral
