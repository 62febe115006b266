"""RegistrySettings: validation and upstream's config keys."""

from __future__ import annotations

import pytest

from tarsus.conf import parse
from tarsus.framework.registry import RegistrySettings

UPSTREAM_CONF = """<tars>
  <reap>
    loadObjectsInterval1=2
    LeastChangedTime1=600
    loadObjectsInterval2=3601
    registryTimeout=150
    recoverProtect=Y
    recoverProtectRate=0
    nodeTimeout=250
    nodeTimeoutInterval=5
    heartbeatoff=Y
  </reap>
  <nodeinfo>
    defaultTemplate=tars.mynode
  </nodeinfo>
</tars>"""


def test_upstream_keys_with_upstream_floors() -> None:
    s = RegistrySettings.from_tcconfig(parse(UPSTREAM_CONF))
    assert s.load_interval == 5.0  # min 5
    assert (s.least_changed_time, s.full_load_interval, s.registry_timeout) == (600, 3601, 150)
    assert s.recover_protect and s.recover_protect_rate == 30  # below 1: 30
    assert (s.node_timeout, s.node_sweep_interval) == (250, 15)  # min 15
    assert s.heartbeat_off and s.default_node_template == "tars.mynode"


def test_absent_keys_give_our_defaults() -> None:
    s = RegistrySettings.from_tcconfig(parse("<tars>\n</tars>"))
    assert s == RegistrySettings()
    assert (s.node_timeout, s.node_sweep_interval, s.load_interval) == (30, 15, 10)


@pytest.mark.parametrize(
    "bad", [{"load_interval": 0}, {"node_timeout": -1}, {"recover_protect_rate": 101}]
)
def test_bad_values_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        RegistrySettings(**bad)  # type: ignore[arg-type]


def test_a_non_number_names_the_key() -> None:
    with pytest.raises(ValueError, match="nodeTimeout"):
        RegistrySettings.from_tcconfig(parse("<tars>\n<reap>\nnodeTimeout=soon\n</reap>\n</tars>"))
