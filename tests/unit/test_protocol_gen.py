"""The checked-in Python of the framework's own interfaces (``tarsus/protocol/gen``).

It must be exactly what ``tarsus idl gen --per-file`` makes of ``tarsus/protocol/*.tars``, and a
type must have one class however it is reached (no re-encoding between loads).
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import tarsus.protocol
from tarsus.codec import decode, encode
from tarsus.codec.struct import Struct
from tarsus.protocol.gen import (
    AdminReg,
    NodeDescriptor,
    NodePush,
    QueryF,
    Registry,
    RegistryDescriptor,
)

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL = ROOT / "tarsus" / "protocol"
GEN = PROTOCOL / "gen"
REGENERATE = "tarsus idl gen --per-file tarsus/protocol/*.tars -o tarsus/protocol/gen"


def stale_modules(protocol_dir: Path, gen_dir: Path, tmp: Path) -> list[str]:
    """Generate ``protocol_dir``'s files with the CLI (a separate process) into ``tmp`` and
    name every module of ``gen_dir`` that differs, is missing or has no ``.tars`` file."""
    files = sorted(str(p) for p in protocol_dir.glob("*.tars"))
    cli = [sys.executable, "-m", "tarsus", "idl", "gen", "--per-file", *files, "-o", str(tmp)]
    run = subprocess.run(cli, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    fresh = {p.name: p.read_bytes() for p in tmp.glob("*.py") if p.name != "__init__.py"}
    checked_in = {p.name: p.read_bytes() for p in gen_dir.glob("*.py") if p.name != "__init__.py"}
    return sorted(n for n in fresh.keys() | checked_in.keys() if fresh.get(n) != checked_in.get(n))


def test_checked_in_modules_are_what_the_generator_makes(tmp_path: Path) -> None:
    stale = stale_modules(PROTOCOL, GEN, tmp_path / "gen")
    assert not stale, (
        f"tarsus/protocol/gen/{', '.join(stale)} disagree(s) with the .tars files; "
        f"regenerate with: {REGENERATE}"
    )
    assert sorted(p.stem for p in GEN.glob("[!_]*.py")) == sorted(
        name.removesuffix(".tars") for name in tarsus.protocol.available()
    )


def test_a_changed_tars_file_shows_as_its_stale_module(tmp_path: Path) -> None:
    protocol, gen = tmp_path / "protocol", tmp_path / "gen"
    shutil.copytree(PROTOCOL, protocol, ignore=shutil.ignore_patterns("gen", "*.py", "*.md"))
    shutil.copytree(GEN, gen)
    endpoint = protocol / "EndpointF.tars"
    endpoint.write_text(endpoint.read_text().replace("string nodeName", "string nodeNames"))
    (gen / "Stray.py").write_text("")
    assert stale_modules(protocol, gen, tmp_path / "fresh") == ["EndpointF.py", "Stray.py"]


def test_a_type_has_one_class_through_every_file() -> None:
    by_name: dict[str, set[type]] = {}
    for path in GEN.glob("[!_]*.py"):
        module = importlib.import_module(f"tarsus.protocol.gen.{path.stem}")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Struct) and value is not Struct:
                by_name.setdefault(value._tars_name_, set()).add(value)
    assert "tars.ServerDescriptor" in by_name
    assert {name: classes for name, classes in by_name.items() if len(classes) > 1} == {}
    # Reached through another file, a type is still its own file's class:
    fields = {f.name: f.type for f in RegistryDescriptor.ServerDescriptor._tars_fields_}
    assert fields["adapters"].value is RegistryDescriptor.AdapterDescriptor
    get_servers = Registry.RegistryProxy._tars_ops_["getServers"]
    assert get_servers.return_type.elem is RegistryDescriptor.ServerDescriptor  # type: ignore[union-attr]
    patch = {p.name: p.type for p in NodePush.NodePushProxy._tars_ops_["patchPro"].params}
    batch = {p.name: p.type for p in AdminReg.AdminRegProxy._tars_ops_["batchPatch"].params}
    assert patch["req"] is batch["req"] is NodeDescriptor.PatchRequest
    ops = QueryF.QueryFProxy._tars_ops_
    assert ops["findObjectById"].return_type.elem.__module__  # type: ignore[union-attr] == "tarsus.protocol.gen.EndpointF"


def test_values_decode_as_the_generated_classes() -> None:
    desc = RegistryDescriptor.ServerDescriptor(application="Test", serverName="Hello")
    back = decode(encode(desc), RegistryDescriptor.ServerDescriptor)
    assert back == desc and type(back) is RegistryDescriptor.ServerDescriptor


@pytest.mark.parametrize(
    "module",
    [
        "tarsus.rpc.application",
        "tarsus.framework.node.agent",
        "tarsus.framework.admin.servant",
        "tarsus.framework.registry.registry_obj",
    ],
)
def test_framework_code_runs_no_idl_compiler(module: str) -> None:
    code = f"import sys, {module}\nassert 'tarsus.idl.parser' not in sys.modules, 'IDL parsed'\n"
    subprocess.run([sys.executable, "-c", code], check=True)
