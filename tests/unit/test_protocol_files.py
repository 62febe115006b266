"""The bundled framework `.tars` files parse, and carry the wire facts peers depend on."""

from __future__ import annotations

import pathlib
from typing import TYPE_CHECKING

import pytest

from tarsus.idl.model import (
    BuiltinKind,
    BuiltinType,
    Const,
    Interface,
    MapType,
    NamedType,
    Operation,
    Program,
    Struct,
    Type,
    VectorType,
)
from tarsus.protocol import PROTOCOL_DIR, path

if TYPE_CHECKING:
    from collections.abc import Callable


def parse_files(files: list[pathlib.Path]) -> Program:
    """tarsus.idl.parser.parse_files; tests that need it skip until the parser exists."""
    parser = pytest.importorskip("tarsus.idl.parser", reason="tarsus.idl.parser not written yet")
    fn: Callable[[list[pathlib.Path]], Program] = parser.parse_files
    return fn(files)


#: Tarsus's own interfaces (module ``tarsus``), bundled beside upstream's: not checked against
#: upstream, but checked below for what keeps them from disturbing upstream peers.
TARSUS_EXTENSIONS = {
    "TarsusAdmin.tars",
    "TarsusConfig.tars",
    "TarsusPatch.tars",
    "TarsusLog.tars",
    "TarsusAlert.tars",
    "TarsusMonitor.tars",
}
#: The upstream files, checked against upstream's interface facts.
TARS_FILES = sorted(p for p in PROTOCOL_DIR.glob("*.tars") if p.name not in TARSUS_EXTENSIONS)

EXPECTED_FILES = {
    "AdminF.tars",
    "AdminReg.tars",
    "BaseF.tars",
    "ConfigF.tars",
    "AuthF.tars",
    "EndpointF.tars",
    "LogF.tars",
    "MonitorQuery.tars",
    "Node.tars",
    "NodeDescriptor.tars",
    "NodeF.tars",
    "NodePush.tars",
    "NotifyF.tars",
    "Patch.tars",
    "PropertyF.tars",
    "QueryF.tars",
    "Registry.tars",
    "RegistryDescriptor.tars",
    "RequestF.tars",
    "StatF.tars",
    "Topology.tars",
}


# --- small helpers -------------------------------------------------------------------------


def b(kind: BuiltinKind) -> BuiltinType:
    return BuiltinType(kind)


def vec(elem: Type) -> VectorType:
    return VectorType(elem)


def smap(value: Type) -> MapType:
    return MapType(b("string"), value)


def st(name: str) -> NamedType:
    return NamedType("tars", name, "struct")


def en(name: str) -> NamedType:
    return NamedType("tars", name, "enum")


BYTES = vec(b("byte"))
STR_MAP = smap(b("string"))


def load(name: str) -> Program:
    return parse_files([path(name)])


def struct(prog: Program, name: str) -> Struct:
    return prog.structs()[f"tars.{name}"]


def op(prog: Program, iface: str, name: str) -> Operation:
    interface: Interface = prog.interfaces()[f"tars.{iface}"]
    (found,) = [o for o in interface.operations if o.name == name]
    return found


def fields(s: Struct) -> list[tuple[int, str, Type, bool]]:
    return [(f.tag, f.name, f.type, f.required) for f in s.fields]


def params(o: Operation) -> list[tuple[int, str, Type, bool]]:
    return [(p.tag, p.name, p.type, p.out) for p in o.params]


def consts(prog: Program) -> dict[str, Const]:
    return {
        f"{d.module}.{d.name}": d
        for f in prog.files.values()
        for m in f.modules
        for d in m.definitions
        if isinstance(d, Const)
    }


# --- the folder and the path() helper ------------------------------------------------------


def test_every_expected_file_is_bundled() -> None:
    assert {p.name for p in PROTOCOL_DIR.glob("*.tars")} == EXPECTED_FILES | TARSUS_EXTENSIONS


def test_path_helper() -> None:
    assert path("QueryF.tars") == PROTOCOL_DIR / "QueryF.tars"
    with pytest.raises(FileNotFoundError, match=r"QueryF\.tars"):
        path("NoSuchFile.tars")
    with pytest.raises(FileNotFoundError):
        path("../protocol/QueryF.tars")


# --- every file compiles ---------------------------------------------------------------------


@pytest.mark.parametrize("tars_file", TARS_FILES, ids=lambda p: p.name)
def test_file_parses(tars_file: pathlib.Path) -> None:
    prog = parse_files([tars_file])
    assert prog.files, tars_file
    for f in prog.files.values():
        assert [m.name for m in f.modules] == ["tars"] * len(f.modules)


def test_all_files_parse_together() -> None:
    prog = parse_files(TARS_FILES)
    assert set(prog.interfaces()) == {
        f"tars.{name}"
        for name in (
            "AdminF", "AdminReg", "Config", "Log", "MonitorQuery", "Node", "NodePush", "Notify",
            "Patch", "PropertyF", "QueryF", "Registry", "ServerF", "StatF", "Topology",
        )
    }  # fmt: skip


# --- the RPC envelope --------------------------------------------------------------------------


def test_request_packet() -> None:
    s = struct(load("RequestF.tars"), "RequestPacket")
    assert fields(s) == [
        (1, "iVersion", b("short"), True),
        (2, "cPacketType", b("byte"), True),
        (3, "iMessageType", b("int"), True),
        (4, "iRequestId", b("int"), True),
        (5, "sServantName", b("string"), True),
        (6, "sFuncName", b("string"), True),
        (7, "sBuffer", BYTES, True),
        (8, "iTimeout", b("int"), True),
        (9, "context", STR_MAP, True),
        (10, "status", STR_MAP, True),
    ]
    defaults = {f.name: f.default for f in s.fields if f.default is not None}
    assert defaults == {
        "cPacketType": 0,
        "iMessageType": 0,
        "sServantName": "",
        "sFuncName": "",
        "iTimeout": 0,
    }


def test_response_packet() -> None:
    s = struct(load("RequestF.tars"), "ResponsePacket")
    assert fields(s) == [
        (1, "iVersion", b("short"), True),
        (2, "cPacketType", b("byte"), True),
        (3, "iRequestId", b("int"), True),
        (4, "iMessageType", b("int"), True),
        (5, "iRet", b("int"), True),
        (6, "sBuffer", BYTES, True),
        (7, "status", STR_MAP, True),
        (8, "sResultDesc", b("string"), False),
        (9, "context", STR_MAP, False),
    ]


def test_base_constants() -> None:
    values = {name: c.value for name, c in consts(load("BaseF.tars")).items()}
    expected = {
        "TARSVERSION": 1,
        "TUPVERSION": 3,
        "XMLVERSION": 4,
        "JSONVERSION": 5,
        "TARSNORMAL": 0,
        "TARSONEWAY": 1,
        "TARSSERVERSUCCESS": 0,
        "TARSSERVERDECODEERR": -1,
        "TARSSERVERNOFUNCERR": -3,
        "TARSSERVERNOSERVANTERR": -4,
        "TARSSERVERQUEUETIMEOUT": -6,
        "TARSINVOKETIMEOUT": -7,
        "TARSSERVEROVERLOAD": -9,
        "TARSADAPTERNULL": -10,
        "TARSSENDREQUESTERR": -13,
        "TARSSERVERUNKNOWNERR": -99,
        "TARSMESSAGETYPEGRID": 0x02,
        "TARSMESSAGETYPEDYED": 0x04,
        "TARSMESSAGETYPESETNAME": 0x80,
        "TARSMESSAGETYPETRACE": 0x100,
    }
    for name, value in expected.items():
        assert values[f"tars.{name}"] == value, name
    assert consts(load("BaseF.tars"))["tars.TARSVERSION"].type == b("short")
    assert consts(load("BaseF.tars"))["tars.TARSONEWAY"].type == b("byte")


# --- registry lookups ----------------------------------------------------------------------


def test_endpoint_f() -> None:
    s = struct(load("EndpointF.tars"), "EndpointF")
    assert [(f.tag, f.name, f.required) for f in s.fields] == [
        (0, "host", True),
        (1, "port", True),
        (2, "timeout", True),
        (3, "istcp", True),
        (4, "grid", True),
        (5, "groupworkid", False),
        (6, "grouprealid", False),
        (7, "setId", False),
        (8, "qos", False),
        (9, "bakFlag", False),
        (11, "weight", False),
        (12, "weightType", False),
        (13, "authType", False),
        (14, "nodeName", False),
    ]
    assert s.key_fields == [
        "host", "port", "timeout", "istcp", "grid", "qos", "weight", "weightType", "authType",
    ]  # fmt: skip


def test_query_f() -> None:
    prog = load("QueryF.tars")
    eps = vec(st("EndpointF"))
    by_id = op(prog, "QueryF", "findObjectById")
    assert by_id.return_type == eps
    assert params(by_id) == [(1, "id", b("string"), False)]
    for name in ("findObjectById4Any", "findObjectById4All", "findObjectByIdInSameGroup"):
        o = op(prog, "QueryF", name)
        assert o.return_type == b("int")
        assert params(o) == [
            (1, "id", b("string"), False),
            (2, "activeEp", eps, True),
            (3, "inactiveEp", eps, True),
        ], name
    assert params(op(prog, "QueryF", "findObjectByIdInSameSet")) == [
        (1, "id", b("string"), False),
        (2, "setId", b("string"), False),
        (3, "activeEp", eps, True),
        (4, "inactiveEp", eps, True),
    ]
    assert [p.name for p in op(prog, "QueryF", "findObjectByIdInSameStation").params] == [
        "id",
        "sStation",
        "activeEp",
        "inactiveEp",
    ]


# --- node <-> registry <-> admin ---------------------------------------------------------------


def test_admin_reg_error_codes() -> None:
    e = load("AdminReg.tars").enums()["tars.tarsErrCode"]
    values = {m.name: m.value for m in e.members}
    assert values == {
        "EM_TARS_NODE_NOT_REGISTRY_ERR": 1001,
        "EM_TARS_CALL_NODE_TIMEOUT_ERR": 1002,
        "EM_TARS_LOAD_SERVICE_DESC_ERR": 1003,
        "EM_TARS_SERVICE_STATE_ERR": 1004,
        "EM_TARS_REQ_ALREADY_ERR": 1005,
        "EM_TARS_INVALID_IP_ERR": 1006,
        "EM_TARS_PARAMETER_ERR": 1007,
        "EM_TARS_OTHER_ERR": 1008,
        "EM_TARS_GET_PATCH_FILE_ERR": 1009,
        "EM_TARS_PREPARE_ERR": 1010,
        "EM_TARS_CAN_NOT_EXECUTE": 1011,
        "EM_TARS_NODE_NO_CONNECTION": 1012,
        "EM_TARS_UNKNOWN_ERR": -1,
        "EM_TARS_SUCCESS": 0,
    }


def test_admin_reg_methods() -> None:
    prog = load("AdminReg.tars")
    assert params(op(prog, "AdminReg", "reportResult")) == [
        (1, "requestId", b("int"), False),
        (2, "funcName", b("string"), False),
        (3, "ret", b("int"), False),
        (4, "result", b("string"), False),
    ]
    ids = op(prog, "AdminReg", "getAllServerIds")
    assert ids.return_type == vec(vec(b("string")))
    assert op(prog, "AdminReg", "pingNode").return_type == b("bool")
    assert "getNodeVesion" in {o.name for o in prog.interfaces()["tars.AdminReg"].operations}
    assert params(op(prog, "AdminReg", "getServerNameList"))[1] == (
        2,
        "serverList",
        vec(STR_MAP),
        True,
    )
    task_status = prog.enums()["tars.EMTaskStatus"]
    assert [(m.name, m.value) for m in task_status.members][-1] == ("EM_T_PARIAL", 6)


def test_server_state_enum_and_state_info() -> None:
    prog = load("NodeDescriptor.tars")
    state = prog.enums()["tars.ServerState"]
    assert [(m.name, m.value) for m in state.members] == [
        ("Inactive", 0),
        ("Activating", 1),
        ("Active", 2),
        ("Deactivating", 3),
        ("Destroying", 4),
        ("Destroyed", 5),
    ]
    info = struct(prog, "ServerStateInfo")
    assert fields(info)[0] == (0, "serverState", en("ServerState"), True)
    assert fields(info)[5] == (5, "settingState", en("ServerState"), False)


def test_registry_update_server_declared_order() -> None:
    # Declared order is upstream's; tarsnode's actual use of the slots is documented elsewhere.
    o = op(load("Registry.tars"), "Registry", "updateServer")
    assert params(o) == [
        (1, "app", b("string"), False),
        (2, "serverName", b("string"), False),
        (3, "nodeName", b("string"), False),
        (4, "state", st("ServerStateInfo"), False),
    ]


def test_server_descriptor_adapters() -> None:
    s = struct(load("RegistryDescriptor.tars"), "ServerDescriptor")
    by_tag = {f.tag: f for f in s.fields}
    assert by_tag[11].name == "adapters"
    assert by_tag[11].type == smap(st("AdapterDescriptor"))
    assert max(by_tag) == 23
    assert all(by_tag[t].required for t in range(12))
    assert not any(by_tag[t].required for t in range(12, 24))


def test_node_push_every_method_starts_with_request_id_and_node_name() -> None:
    iface = load("NodePush.tars").interfaces()["tars.NodePush"]
    assert len(iface.operations) == 15
    for o in iface.operations:
        assert o.return_type is None, o.name
        assert all(p.out for p in o.params), o.name
        assert params(o)[:2] == [
            (1, "requestId", b("int"), True),
            (2, "nodeName", b("string"), True),
        ], o.name


def test_server_f() -> None:
    prog = load("NodeF.tars")
    assert fields(struct(prog, "ServerInfo")) == [
        (0, "application", b("string"), True),
        (1, "serverName", b("string"), True),
        (2, "pid", b("int"), True),
        (3, "adapter", b("string"), False),
    ]
    latest = op(prog, "ServerF", "getLatestKeepAliveTime")
    assert latest.return_type == b("unsigned int")
    assert latest.params == []


# --- reporting services ----------------------------------------------------------------------


def test_stat_f() -> None:
    prog = load("StatF.tars")
    body = struct(prog, "StatMicMsgBody")
    assert fields(body)[3] == (3, "intervalCount", MapType(b("int"), b("int")), True)
    assert fields(body)[4] == (4, "totalRspTime", b("long"), True)
    report = op(prog, "StatF", "reportMicMsg")
    assert params(report) == [
        (1, "msg", MapType(st("StatMicMsgHead"), st("StatMicMsgBody")), False),
        (2, "bFromClient", b("bool"), False),
    ]


def test_notify_report_info_tags_start_at_one() -> None:
    s = struct(load("NotifyF.tars"), "ReportInfo")
    assert [f.tag for f in s.fields] == list(range(1, 10))
    assert fields(s)[0] == (1, "eType", en("ReportType"), True)


def test_admin_f() -> None:
    iface = load("AdminF.tars").interfaces()["tars.AdminF"]
    sigs = {o.name: (o.return_type, params(o)) for o in iface.operations}
    assert sigs == {
        "shutdown": (None, []),
        "notify": (b("string"), [(1, "command", b("string"), False)]),
        "getPid": (b("long"), []),
    }


def test_defaults_that_peers_rely_on() -> None:
    prog = parse_files(TARS_FILES)

    def default(struct_name: str, field_name: str) -> object:
        (f,) = [f for f in struct(prog, struct_name).fields if f.name == field_name]
        return f.default

    assert default("ConfigInfo", "bAppOnly") is False
    assert default("LogInfo", "bHasSufix") is True
    assert default("LogInfo", "sSepar") == "|"
    assert default("StatPropMsgHead", "iPropertyVer") == 1
    assert default("AdapterConf", "queuetimeout") == 600000
    assert default("ServerConf", "settingState") == "active"
    assert default("MonitorQueryReq", "method") == "query"
    assert default("TaskReq", "eachNum") == 1


# --- Tarsus extensions (not upstream) ----------------------------------------------------------


def test_tarsus_admin_extension_is_module_tarsus_and_adds_only_new_functions() -> None:
    """AdminExt is served on AdminRegObj beside AdminReg: a function name shared with AdminReg
    would change what upstream clients get, so there must be none."""
    prog = parse_files([path("TarsusAdmin.tars")])
    own = [f for name, f in prog.files.items() if str(name).endswith("TarsusAdmin.tars")]
    assert [[m.name for m in f.modules] for f in own] == [["tarsus"]]
    # AdminReg.tars is included for its ServerConf/AdapterConf (deployServer), nothing more
    assert {n for n in prog.interfaces() if not n.startswith("tars.")} == {"tarsus.AdminExt"}
    ext = {o.name for o in prog.interfaces()["tarsus.AdminExt"].operations}
    assert ext == {
        "listProfileTemplates",
        "getRawProfileTemplate",
        "setProfileTemplate",
        "forceProfileTemplate",
        "deleteProfileTemplate",
        "deployServer",
        "addPatchPackage",
        "listPatchPackages",
        "deletePatchPackage",
        "setDefaultPatchPackage",
        "checkServerAnswers",
        "relayNodePush",
        "setServerRunType",
    }
    upstream = {o.name for o in load("AdminReg.tars").interfaces()["tars.AdminReg"].operations}
    assert not ext & upstream
    tpl = prog.structs()["tarsus.ProfileTemplate"]
    assert fields(tpl) == [
        (0, "name", b("string"), True),
        (1, "parentName", b("string"), True),
        (2, "profile", b("string"), True),
        (3, "postTime", b("string"), False),
        (4, "lastUser", b("string"), False),
    ]


def test_tarsus_extensions_parse_together_with_upstream_files() -> None:
    prog = parse_files([*TARS_FILES, *(path(name) for name in sorted(TARSUS_EXTENSIONS))])
    assert "tarsus.AdminExt" in prog.interfaces()
    assert "tars.AdminReg" in prog.interfaces()


def test_tarsus_patch_extension_adds_only_new_functions_beside_patch() -> None:
    """PatchExt is served on PatchObj beside Patch: a function name shared with Patch would
    change what tarsnode and TarsWeb get, so there must be none."""
    prog = parse_files([path("TarsusPatch.tars")])
    assert {n for n in prog.interfaces() if not n.startswith("tars.")} == {"tarsus.PatchExt"}
    ext = {o.name for o in prog.interfaces()["tarsus.PatchExt"].operations}
    assert ext == {"listUploads"}
    upstream = {o.name for o in load("Patch.tars").interfaces()["tars.Patch"].operations}
    assert not ext & upstream


def test_tarsus_config_extension_adds_only_new_functions_beside_config() -> None:
    """ConfigExt sits beside Config in the config center (on ConfigExtObj; Tarsus before 13
    served both on ConfigObj): a function name shared with Config would change what an SDK's
    addConfig gets from such a server, so there must be none."""
    prog = parse_files([path("TarsusConfig.tars")])
    assert {n for n in prog.interfaces() if not n.startswith("tars.")} == {"tarsus.ConfigExt"}
    ext = {o.name for o in prog.interfaces()["tarsus.ConfigExt"].operations}
    assert ext == {
        "addConfigFile",
        "updateConfigFile",
        "deleteConfigFile",
        "listConfigFiles",
        "getConfigFile",
        "listConfigHistory",
        "getConfigHistory",
        "restoreConfigHistory",
        "addConfigReference",
        "removeConfigReference",
        "mergedConfig",
    }
    upstream = {o.name for o in load("ConfigF.tars").interfaces()["tars.Config"].operations}
    assert not ext & upstream
    codes = prog.enums()["tarsus.ConfigExtCode"]
    assert {m.name: m.value for m in codes.members}["CONFIG_OK"] == 0
    f = prog.structs()["tarsus.ConfigFile"]
    assert [(x.tag, x.name) for x in f.fields][:4] == [
        (0, "id"),
        (1, "level"),
        (2, "serverName"),
        (3, "fileName"),
    ]


def test_tarsus_log_extension_adds_only_new_functions_beside_log() -> None:
    """LogExt is served on LogObj beside Log: a function name shared with Log would change
    what every SDK's remote logger gets, so there must be none."""
    prog = parse_files([path("TarsusLog.tars")])
    assert set(prog.interfaces()) == {"tarsus.LogExt"}
    ext = {o.name for o in prog.interfaces()["tarsus.LogExt"].operations}
    assert ext == {"listLogFiles", "getLogData"}
    upstream = {o.name for o in load("LogF.tars").interfaces()["tars.Log"].operations}
    assert not ext & upstream


def test_tarsus_alert_extension_is_in_module_tarsus_only() -> None:
    prog = parse_files([path("TarsusAlert.tars")])
    assert set(prog.interfaces()) == {"tarsus.AlertExt"}
    ops = {o.name for o in prog.interfaces()["tarsus.AlertExt"].operations}
    assert ops == {"listRules", "addRule", "updateRule", "deleteRule", "testRule", "listEvents"}


def test_tarsus_monitor_extension_adds_only_new_functions_beside_monitor_query() -> None:
    """MonitorExt is served on tars.tarsquerystat.QueryObj beside MonitorQuery: no shared
    function name, so upstream's web sees only query."""
    prog = parse_files([path("TarsusMonitor.tars")])
    assert "tarsus.MonitorExt" in prog.interfaces()
    ext = {o.name for o in prog.interfaces()["tarsus.MonitorExt"].operations}
    assert ext == {"queryLatency"}
    upstream = prog.interfaces()["tars.MonitorQuery"].operations
    assert not ext & {o.name for o in upstream}
