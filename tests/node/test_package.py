"""Installing Python services from packages: real venvs, real pip, real tarballs."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from node_support import HELLO_DIR, descriptor, hello_descriptor, make_settings

from tarsus.framework.node import (
    NodeError,
    PackageError,
    PackageManifest,
    install_package,
    server_layout,
)
from tarsus.framework.node.config import ServerLayout
from tarsus.framework.node.package import UnpackLimits, md5_of, python_satisfies, venv_python
from tarsus.testing import free_port

APP, SERVER = "Demo", "Pkg"


def layout_for(tmp_path: Path) -> ServerLayout:
    return server_layout(descriptor(APP, SERVER), make_settings(tmp_path))


def write_package(
    root: Path,
    *,
    version: str = "1",
    manifest: str | None = None,
    requirements: str | None = None,
    wheels: dict[str, bytes] | None = None,
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    if manifest is None:
        manifest = f'[package]\nname = "{APP}.{SERVER}"\nentry = "main.py"\n'
    (root / "tarsus.toml").write_text(manifest)
    (root / "main.py").write_text("print('hi')\n")
    (root / "VERSION").write_text(version)
    if requirements is not None:
        (root / "requirements.txt").write_text(requirements)
    for name, data in (wheels or {}).items():
        (root / "wheels").mkdir(exist_ok=True)
        (root / "wheels" / name).write_bytes(data)
    return root


def make_wheel(name: str = "tinydep", version: str = "1.0", code: str = "VALUE = 42\n") -> bytes:
    """A minimal, valid pure-Python wheel."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": code.encode(),
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return out.getvalue()


def tarball(src: Path, dest: Path, *, top: str = "pkg") -> Path:
    with tarfile.open(dest, "w:gz") as tar:
        tar.add(src, arcname=top)
    return dest


def hostile_tarball(dest: Path, member: tarfile.TarInfo, data: bytes = b"x") -> Path:
    """A package that is fine except for one planted member."""
    good = write_package(dest.parent / "hostile-src")
    with tarfile.open(dest, "w:gz") as tar:
        tar.add(good, arcname="pkg")
        tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return dest


def member(name: str, *, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.size = 1 if kind == tarfile.REGTYPE else 0
    return info


def installed_state(layout: ServerLayout) -> tuple[str, str]:
    return (layout.bin_dir / "VERSION").read_text(), os.readlink(layout.venv_dir)


async def test_tarball_with_wheels_gives_a_venv_that_imports_them_and_tarsus(
    tmp_path: Path,
) -> None:
    layout = layout_for(tmp_path)
    src = write_package(
        tmp_path / "src",
        requirements="tinydep\n",
        wheels={"tinydep-1.0-py3-none-any.whl": make_wheel()},
    )
    archive = tarball(src, tmp_path / "Demo.Pkg.tgz")
    progress: list[int] = []
    result = await install_package(
        f"file://{archive}", layout, md5=md5_of(archive), progress=progress.append
    )
    assert result.manifest.name == "Demo.Pkg" and result.md5 == md5_of(archive)
    assert (layout.bin_dir / "main.py").exists() and (layout.bin_dir / "tarsus.toml").exists()
    assert layout.venv_dir.is_symlink() and layout.venv_dir.resolve() == result.venv_dir
    assert progress == sorted(progress) and progress[-1] == 99
    out = subprocess.run(
        [
            str(venv_python(layout.venv_dir)),
            "-c",
            "import sys, tinydep, tarsus.rpc.application; "
            "print(tinydep.VALUE, tinydep.__file__.startswith(sys.prefix))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["42", "True"]  # the wheel is in the service's own venv


def _bad(tmp_path: Path, case: str) -> tuple[str, str]:
    """(location, md5) of a broken package of kind ``case``."""
    src = tmp_path / f"bad-{case}"
    if case == "no manifest":
        write_package(src).joinpath("tarsus.toml").unlink()
    elif case == "bad toml":
        write_package(src, manifest="[package\nname = 'x'\n")
    elif case == "no entry":
        write_package(src, manifest=f'[package]\nname = "{APP}.{SERVER}"\nentry = "nope.py"\n')
    elif case == "entry escapes":
        write_package(src, manifest=f'[package]\nname = "{APP}.{SERVER}"\nentry = "../x.py"\n')
    elif case == "other server":
        write_package(src, manifest='[package]\nname = "Demo.Other"\nentry = "main.py"\n')
    elif case == "python too old":
        write_package(
            src,
            manifest=f'[package]\nname = "{APP}.{SERVER}"\nentry = "main.py"\n'
            'requires-python = ">=4"\n',
        )
    elif case == "broken wheel":
        write_package(
            src,
            requirements="brokenwheel\n",
            wheels={"brokenwheel-1.0-py3-none-any.whl": b"this is not a zip file"},
        )
    elif case == "missing wheel":
        write_package(src, requirements="notbundled==1.0\n")
    else:
        archive = tmp_path / f"{case.replace(' ', '-')}.tgz"
        if case == "dotdot member":
            hostile_tarball(archive, member("pkg/../../evil.py"))
        elif case == "absolute member":
            hostile_tarball(archive, member("/tmp/evil.py"))
        elif case == "escaping symlink":
            hostile_tarball(archive, member("pkg/link", kind=tarfile.SYMTYPE, link="../../.."))
        elif case == "absolute symlink":
            hostile_tarball(archive, member("pkg/link", kind=tarfile.SYMTYPE, link="/etc/passwd"))
        elif case == "device":
            hostile_tarball(archive, member("pkg/dev", kind=tarfile.CHRTYPE))
        elif case == "not a tarball":
            archive.write_bytes(b"\x1f\x8b garbage")
        elif case == "md5 mismatch":
            tarball(write_package(src), archive)
            return str(archive), "0" * 32
        return str(archive), ""
    return str(src), ""


BAD_CASES = {
    "no manifest": "tarsus.toml is missing",
    "bad toml": "not valid TOML",
    "no entry": "'nope.py' is not a file in the package",
    "entry escapes": "must be a path inside the package",
    "other server": "the package is 'Demo.Other', not 'Demo.Pkg'",
    "python too old": "requires-python '>=4'",
    "broken wheel": "installing the bundled wheels failed",
    "missing wheel": "notbundled",
    "dotdot member": "contains '..'",
    "absolute member": "has an absolute path",
    "escaping symlink": "leads outside the package",
    "absolute symlink": "points to the absolute path",
    "device": "is a device or a fifo",
    "not a tarball": "not a readable tar archive",
    "md5 mismatch": "md5 mismatch",
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
async def test_bad_packages_are_refused_and_leave_the_installed_one(
    tmp_path: Path, case: str
) -> None:
    layout = layout_for(tmp_path)
    await install_package(str(write_package(tmp_path / "good", version="good")), layout)
    before = installed_state(layout)
    venvs_before = sorted(p.name for p in (layout.server_dir / "venvs").iterdir())
    location, md5 = _bad(tmp_path, case)
    with pytest.raises(PackageError) as refused:
        await install_package(location, layout, md5=md5)
    assert BAD_CASES[case] in str(refused.value)
    assert installed_state(layout) == before
    assert sorted(p.name for p in (layout.server_dir / "venvs").iterdir()) == venvs_before
    assert not [p for p in layout.server_dir.iterdir() if p.name.startswith(".")]
    assert not (tmp_path / "evil.py").exists()
    if case == "broken wheel":  # pip's own words are in the error
        assert "pip exit" in str(refused.value) and "brokenwheel" in str(refused.value)


async def test_backups_rotate_and_old_venvs_are_pruned(tmp_path: Path) -> None:
    layout = layout_for(tmp_path)
    for version in range(1, 8):
        src = write_package(tmp_path / f"v{version}", version=str(version))
        await install_package(str(src), layout)
    assert (layout.bin_dir / "VERSION").read_text() == "7"
    backups = sorted(p.name for p in layout.backup_dir.iterdir())
    assert backups == [f"bin_bak{n}" for n in range(1, 6)]
    assert [(layout.backup_dir / f"bin_bak{n}" / "VERSION").read_text() for n in range(1, 6)] == [
        "6",
        "5",
        "4",
        "3",
        "2",
    ]
    venvs = list((layout.server_dir / "venvs").iterdir())
    assert len(venvs) == 3 and layout.venv_dir.resolve() in venvs


def test_manifest_reading() -> None:
    manifest = PackageManifest.parse(
        '[package]\nname = "Test.HelloServer"\nentry = "./app/main.py"\n'
        'requires-python = ">=3.11, <4"\n[servants]\nHelloObj = { port = 18601 }\n'
    )
    assert (manifest.app, manifest.server, manifest.entry) == ("Test", "HelloServer", "app/main.py")
    assert manifest.servants == {"HelloObj": {"port": 18601}}
    assert PackageManifest.load(HELLO_DIR / "tarsus.toml").name == "Test.HelloServer"
    for text, error in [
        ("", "a [package] table"),
        ('[package]\nname = "NoDot"\nentry = "a.py"\n', "must be 'App.Server'"),
        ('[package]\nname = "A.B"\n', "entry must name"),
        ('[package]\nname = "A.B"\nentry = "a.py"\nrequires-python = "3.11+"\n', "cannot read"),
        ('[package]\nname = "A.B"\nentry = "a.py"\n[servants]\nX = { port = 0 }\n', "1-65535"),
    ]:
        with pytest.raises(PackageError, match=error.replace("[", r"\[").replace("+", r"\+")):
            PackageManifest.parse(text)


def test_partial_manifest_for_deploy_tooling() -> None:
    # deploy reads what the node will install: name and entry may be left out, but what is
    # there is checked, and every servant it lists needs a port
    manifest = PackageManifest.parse("[servants]\nHelloObj = { port = 18601 }\n", partial=True)
    assert (manifest.name, manifest.entry) == ("", "")
    assert manifest.servant_ports() == {"HelloObj": 18601}
    assert PackageManifest.parse("", partial=True).servant_ports() == {}
    for text, error in [
        ("package = 1\n", "[package] must be a table"),
        ('[package]\nname = "NoDot"\n', "must be 'App.Server'"),
        ('[package]\nentry = "../x.py"\n', "must be a path inside the package"),
    ]:
        with pytest.raises(PackageError, match=re.escape(error)):
            PackageManifest.parse(text, partial=True)
    for text, error in [
        ("[servants]\nHelloObj = {}\n", "[servants] HelloObj: write HelloObj = { port"),
        ('[servants]\n"Hello-Obj" = { port = 1 }\n', "a servant name is letters"),
    ]:
        with pytest.raises(PackageError, match=re.escape(error)):
            PackageManifest.parse(text, partial=True).servant_ports()


def test_requires_python() -> None:
    assert python_satisfies(">=3.11,<4", (3, 11, 7))
    assert not python_satisfies(">=3.12", (3, 11, 7))
    assert python_satisfies("~=3.10", (3, 11, 0)) and not python_satisfies("~=3.10.1", (3, 11, 0))
    assert python_satisfies("==3.11.*", (3, 11, 2)) and not python_satisfies("!=3.11.*", (3, 11, 2))


async def test_unsupported_locations(tmp_path: Path) -> None:
    layout = layout_for(tmp_path)
    with pytest.raises(PackageError, match="not supported yet"):
        await install_package("https://example.com/x.tgz", layout)
    with pytest.raises(PackageError, match="does not exist"):
        await install_package(str(tmp_path / "nothing.tgz"), layout)


async def test_installed_hello_runs_from_its_own_venv(harness_factory: Callable[..., Any]) -> None:
    node = await harness_factory()
    port = free_port()
    sp = await node.supervisor.load(hello_descriptor(port, exe_path=""))
    with pytest.raises(Exception, match="no package installed"):
        await node.supervisor.start_server("Test", "HelloServer")
    assert not sp.installed
    result = await node.supervisor.install("Test", "HelloServer", str(HELLO_DIR), version="7")
    assert result.startswith("patch succ")
    info = node.supervisor.patch_info("Test", "HelloServer")
    assert (info.iPercent, info.bSucc, info.bPatching, info.sVersion) == (100, True, False, "7")
    await node.supervisor.start_server("Test", "HelloServer")
    await node.wait_state("Test", "HelloServer", "Active")
    assert await node.say_hello(port) == "hello node, from Python"
    argv = psutil.Process(sp.pid).cmdline()
    venvs = sp.layout.server_dir / "venvs"
    assert Path(argv[0]).parent.parent.parent == venvs  # <server>/venvs/<stamp>/bin/python
    assert argv[1:] == [str(sp.layout.bin_dir / "server.py"), f"--config={sp.layout.conf_file}"]


# -- archive bombs and the disk check (issue 9 §6) --------------------------------------------

MiB = 1024 * 1024


def bomb(dest: Path, *, unpacked: int) -> Path:
    """A valid package plus ``pkg/zeros.bin`` of ``unpacked`` zero bytes: gzip makes it a
    thousand times smaller than what it unpacks to."""
    good = write_package(dest.parent / "bomb-src", version="bomb")
    with tarfile.open(dest, "w:gz") as tar:
        tar.add(good, arcname="pkg")
        info = tarfile.TarInfo("pkg/zeros.bin")
        info.size = unpacked
        tar.addfile(info, io.BytesIO(bytes(unpacked)))
    return dest


def claiming(dest: Path, *, claimed: int) -> Path:
    """An archive whose header claims a ``claimed``-byte member and stops after a block."""
    good = write_package(dest.parent / "claim-src", version="claim")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        tar.add(good, arcname="pkg")
        members_end = tar.offset
    info = tarfile.TarInfo("pkg/huge.bin")
    info.size = claimed
    data = raw.getvalue()[:members_end] + info.tobuf(format=tarfile.GNU_FORMAT) + bytes(512)
    dest.write_bytes(gzip.compress(data))
    return dest


async def test_an_archive_bomb_is_refused_before_it_is_unpacked(
    harness_factory: Callable[..., Any], tmp_path: Path
) -> None:
    node = await harness_factory(max_unpacked_size=16 * MiB)
    sp = await node.supervisor.load(descriptor(APP, SERVER))
    layout = sp.layout
    assert await node.supervisor.install(APP, SERVER, str(write_package(tmp_path / "ok")))
    before = installed_state(layout)
    archive = bomb(tmp_path / "bomb.tgz", unpacked=64 * MiB)
    assert archive.stat().st_size < MiB  # 64 MiB in well under 1 MiB
    with pytest.raises(NodeError) as refused:
        await node.supervisor.install(APP, SERVER, str(archive))
    assert "unpacks to more than 16.0 MiB" in str(refused.value)
    assert "max_unpacked_size" in str(refused.value)
    info = node.supervisor.patch_info(APP, SERVER)
    assert (info.iPercent, info.bSucc) == (100, False)
    assert installed_state(layout) == before
    scratch = (".install-", ".bin-old-", ".venv-")
    assert not [p for p in layout.server_dir.iterdir() if p.name.startswith(scratch)]
    assert not list(layout.server_dir.rglob("zeros.bin"))
    assert not layout.backup_dir.exists() or not list(layout.backup_dir.rglob("zeros.bin"))
    # a header that only claims the size is refused the same way, before any data is read
    with pytest.raises(NodeError, match=r"at least 1\.0 GiB"):
        await node.supervisor.install(
            APP, SERVER, str(claiming(tmp_path / "c.tgz", claimed=1 << 30))
        )
    assert installed_state(layout) == before
    # below the cap it installs
    assert await node.supervisor.install(APP, SERVER, str(bomb(tmp_path / "b.tgz", unpacked=MiB)))
    assert (layout.bin_dir / "zeros.bin").stat().st_size == MiB


async def test_a_package_that_does_not_fit_on_the_disk_is_refused(tmp_path: Path) -> None:
    layout = layout_for(tmp_path)
    await install_package(str(write_package(tmp_path / "good", version="good")), layout)
    before = installed_state(layout)
    # what is free now (and a margin: other processes share the disk) must stay free
    free = shutil.disk_usage(tmp_path).free
    limits = UnpackLimits(max_size=1 << 40, disk_reserve=free + 256 * MiB)
    for location in (
        str(bomb(tmp_path / "b.tgz", unpacked=4 * MiB)),  # a tarball
        str(write_package(tmp_path / "dir", version="dir")),  # a directory
    ):
        with pytest.raises(PackageError, match="not enough disk space for the package"):
            await install_package(location, layout, limits=limits)
        assert installed_state(layout) == before
        assert not [p for p in layout.server_dir.iterdir() if p.name.startswith(".")]
