"""``tarsus up`` serves the HTTP app, and upstream's script API publishes end to end: a new
build of Hello, posted with ``curl`` in the form TarsCpp's ``make <Server>-upload`` uses, is
stored on PatchObj, recorded, published by a task, and answers calls by name.

Uses ``tarsus up``'s fixed ports and 3000 (the web's).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from up_support import ROOT, call_hello, tarsus

from tarsus.testing import TarsusUp, eventually_sync

WEB = "http://127.0.0.1:3000"


def _new_build(tmp: Path) -> Path:
    """examples/hello with another greeting, packed as ``make tar`` would (one folder)."""
    src = tmp / "HelloServer"
    shutil.copytree(ROOT / "examples" / "hello", src)
    server = src / "server.py"
    server.write_text(server.read_text().replace("from Python", "from the web upload"))
    archive = tmp / "HelloServer.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src, arcname="HelloServer")
    return archive


def _curl(url: str, *form: str) -> tuple[int, str]:
    args = ["curl", "-sS", "-o", "-", "-w", "\n@@%{http_code}", url]
    for item in form:
        args += ["-F", item]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    text, _, code = done.stdout.rpartition("\n@@")
    assert code.isdigit(), done.stderr
    return int(code), text


@pytest.mark.slow
def test_upload_and_publish_through_tarsus_up(tmp_path: Path) -> None:
    data = tmp_path / "data"
    up = TarsusUp("--data-dir", str(data), log=tmp_path / "up.log", cwd=ROOT)
    try:
        token = (data / "web" / "token").read_text().strip()
        log = up.log_text()
        assert f"web console     {WEB} (log in as admin" in log
        password = log.split("admin password  ", 1)[1].split(" ", 1)[0]
        logged_in = subprocess.run(
            [
                "curl",
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-H",
                "Content-Type: application/json",
                "-d",
                json.dumps({"uid": "admin", "password": password}),
                f"{WEB}/api/v1/session",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert logged_in.stdout == "201", logged_in.stderr
        assert f"web token       {token} (in {data / 'web' / 'token'})" in up.log_text()
        printed = tarsus("web", "token", "--data-dir", str(data))
        assert printed.stdout.strip() == token

        url = f"{WEB}/api/upload_and_publish?ticket={token}"
        status, text = _curl(
            url,
            f"suse=@{_new_build(tmp_path)}",
            "application=Test",
            "module_name=HelloServer",
            "comment=from make upload",
        )
        assert status == 200, text + up.log_text()
        assert "patch serverId: " in text and "node_name: 127.0.0.1" in text
        assert "task no:  [" in text
        assert "127.0.0.1 EM_I_SUCCESS" in text
        assert text.endswith("task status: EM_T_SUCCESS\n")

        def new_version_answers() -> bool:
            done = call_hello()
            return done.returncode == 0 and json.loads(done.stdout)["greeting"] == (
                "hello x, from the web upload"
            )

        eventually_sync(new_version_answers, "the published build to answer", timeout=60)
        stored = list((data / "patchs" / "tars.upload" / "Test" / "HelloServer").glob("*.tgz"))
        assert [p.name.startswith("Test.HelloServer_suse_") for p in stored] == [True]

        # a wrong ticket changes nothing
        status, text = _curl(
            f"{WEB}/api/upload_and_publish?ticket=nope",
            f"suse=@{tmp_path / 'HelloServer.tgz'}",
            "application=Test",
            "module_name=HelloServer",
        )
        assert status == 403, text
        again = list((data / "patchs" / "tars.upload" / "Test" / "HelloServer").glob("*.tgz"))
        assert again == stored
    finally:
        assert up.stop() == 0, up.log_text()
