"""Packages of the other server types in upstream's layouts (no ``tarsus.toml``, no venv), what
is refused before anything changes, and the launch lines of every type."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest
from node_support import descriptor, make_settings

from tarsus.conf import parse
from tarsus.framework.node import PackageError, install_package, server_layout
from tarsus.framework.node.config import RuntimeConfig, ServerLayout
from tarsus.framework.node.launch import LaunchError, launch_spec
from tarsus.framework.node.layouts import NODE_AGENT

EXE = b"#!/bin/sh\nexec sleep 60\n"


def layout(tmp: Path, server: str, server_type: str, **kw: object) -> ServerLayout:
    return server_layout(
        descriptor("Demo", server, server_type=server_type, **kw), make_settings(tmp)
    )


def tgz(path: Path, files: dict[str, bytes], *, mode: int = 0o755) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return path


async def test_upstream_make_tar_layout_installs_without_manifest_or_venv(tmp_path: Path) -> None:
    cpp = layout(tmp_path, "CppServer", "tars_cpp")
    files = {"CppServer/CppServer": EXE, "CppServer/lib.so": b"x"}
    package = tgz(tmp_path / "CppServer.tgz", files)
    installed = await install_package(str(package), cpp)
    assert installed.manifest is None and installed.venv_dir is None
    assert installed.summary == "CppServer (tars_cpp)"
    assert sorted(os.listdir(cpp.bin_dir)) == ["CppServer", "lib.so"]
    assert not cpp.venv_dir.exists()
    # a second build: the first goes to bin_bak1
    await install_package(str(tgz(tmp_path / "v2.tgz", {"CppServer/CppServer": EXE})), cpp)
    assert sorted(os.listdir(cpp.backup_dir / "bin_bak1")) == ["CppServer", "lib.so"]


@pytest.mark.parametrize(
    ("server_type", "files", "says"),
    [
        ("tars_cpp", {"Other/Other": EXE}, "the package is 'Other''s (Other/...), not 'Mine''s"),
        ("not_tars", {"Mine/readme": b"x"}, "no executable Mine in the package"),
        ("tars_go", {"Mine/Mine/x": b"x"}, "no executable Mine"),
        ("tars_nodejs", {"Mine/index.js": b""}, "has package.json at its root"),
        (
            "tars_nodejs",
            {"Mine/package.json": b'{"main": "../x.js"}'},
            "leads outside the package",
        ),
        ("tars_nodejs", {"Mine/package.json": b"[1]"}, "must hold a JSON object"),
        ("tars_nodejs", {"Mine/package.json": b'{"main": "a.js"}', "Mine/a.js": b""}, "@tars/rpc"),
        ("tars_python", {"Mine/Mine": EXE}, "tarsus.toml"),
    ],
)
async def test_packages_that_do_not_fit_are_refused_and_nothing_changes(
    tmp_path: Path, server_type: str, files: dict[str, bytes], says: str
) -> None:
    mine = layout(tmp_path, "Mine", server_type)
    mine.bin_dir.mkdir(parents=True)
    (mine.bin_dir / "running").write_text("the installed version")
    with pytest.raises(PackageError) as refused:
        await install_package(str(tgz(tmp_path / "p.tgz", files)), mine)
    assert says in str(refused.value)
    assert os.listdir(mine.bin_dir) == ["running"]
    assert not mine.backup_dir.exists()
    assert [p.name for p in mine.server_dir.iterdir()] == ["bin"]  # no scratch left behind


async def test_a_start_script_stands_for_the_executable(tmp_path: Path) -> None:
    scripted = layout(tmp_path, "Mine", "not_tars", start_script="start.sh")
    with pytest.raises(PackageError, match=r"the start script start\.sh is not in the package"):
        await install_package(str(tgz(tmp_path / "a.tgz", {"Mine/Mine": EXE})), scripted)
    await install_package(str(tgz(tmp_path / "b.tgz", {"Mine/start.sh": EXE})), scripted)
    assert os.listdir(scripted.bin_dir) == ["start.sh"]


async def test_a_binary_that_is_not_executable_is_refused(tmp_path: Path) -> None:
    cpp = layout(tmp_path, "CppServer", "tars_cpp")
    package = tgz(tmp_path / "p.tgz", {"CppServer/CppServer": EXE}, mode=0o644)
    with pytest.raises(PackageError, match="not executable"):
        await install_package(str(package), cpp)


async def test_a_renamed_binary_is_found_as_upstream_finds_it(tmp_path: Path) -> None:
    cpp = layout(tmp_path, "CppServer", "tars_cpp")
    package = tgz(tmp_path / "p.tgz", {"CppServer/HelloServer_v2": EXE})
    await install_package(str(package), cpp)
    spec = launch_spec(cpp, RuntimeConfig())
    assert spec.argv == (str(cpp.bin_dir / "HelloServer_v2"), f"--config={cpp.conf_file}")


async def test_nodejs_entry_from_package_json(tmp_path: Path) -> None:
    js = layout(tmp_path, "Js", "tars_nodejs")
    modules = {"Js/node_modules/@tars/rpc/package.json": b"{}"}
    start = json.dumps({"scripts": {"start": "node --max-old-space-size=64 src/app.js"}})
    package = tgz(
        tmp_path / "p.tgz", {"Js/package.json": start.encode(), "Js/src/app.js": b"", **modules}
    )
    installed = await install_package(str(package), js)
    assert installed.summary == "Js (tars_nodejs)"
    spec = launch_spec(js, RuntimeConfig())
    assert spec.argv[1:] == (
        str(NODE_AGENT),
        str(js.bin_dir / "src" / "app.js"),
        "-c",
        str(js.conf_file),
    )
    assert spec.env["TARS_CONFIG"] == str(js.conf_file)


def fake_interpreters(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp / "path"
    bin_dir.mkdir()
    for name in ("java", "php", "node"):
        (bin_dir / name).write_text("#!/bin/sh\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


def runtime(lines: str) -> RuntimeConfig:
    text = f"<tars>\n<application>\n<server>\n{lines}\n</server>\n</application>\n</tars>\n"
    return RuntimeConfig.from_config(parse(text))


def test_java_launch_line_is_upstreams(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = fake_interpreters(tmp_path, monkeypatch)
    java = layout(tmp_path, "JavaServer", "tars_java")
    spec = launch_spec(
        java,
        runtime(
            "jvmparams=-Xms256m -Xmx512m\nclasspath=/srv/lib\n"
            "mainclass=com.qq.Demo.JavaServer.JavaServer"
        ),
    )
    assert spec.argv == (
        str(path / "java"),
        f"-Dconfig={java.conf_file}",
        "-Xms256m",
        "-Xmx512m",
        "-cp",
        "/srv/lib/*",
        "com.qq.Demo.JavaServer.JavaServer",
    )
    # tars.springboot: mainclass "-jar <jar>", no classpath
    spec = launch_spec(java, runtime("mainclass=-jar /srv/Demo.JavaServer.jar"))
    assert spec.argv[1:] == (f"-Dconfig={java.conf_file}", "-jar", "/srv/Demo.JavaServer.jar")


def test_php_launch_line_is_upstreams(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = fake_interpreters(tmp_path, monkeypatch)
    php = layout(tmp_path, "PhpServer", "tars_php")
    conf = f"--config={php.conf_file}"
    default = str(php.server_dir / "bin" / "src" / "index.php")
    assert launch_spec(php, RuntimeConfig()).argv == (str(path / "php"), default, conf)
    entrance = launch_spec(php, runtime("entrance=/srv/php/main.php")).argv
    assert entrance == (str(path / "php"), "/srv/php/main.php", conf)


def test_missing_interpreter_or_entry_is_a_clear_start_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(LaunchError, match="java is not exist"):
        launch_spec(layout(tmp_path, "J", "tars_java"), RuntimeConfig())
    fake_interpreters(tmp_path, monkeypatch)
    with pytest.raises(LaunchError, match=r"package\.json"):
        launch_spec(layout(tmp_path, "Js", "tars_nodejs"), RuntimeConfig())
