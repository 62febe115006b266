"""Upstream's Node config client, ``@tars/config``, reads business config files from our config
center (``tars.tarsconfig.ConfigObj``): the merged server file, the application file, the list,
and what it gets for a file that is not there."""

from __future__ import annotations

import json
from pathlib import Path

from peer import run_script

from tarsus.framework.config import ConfigService, ConfigSettings
from tarsus.framework.service import host
from tarsus.rpc.application import Application
from tarsus.store import open_store
from tarsus.store.configs import MERGE_SEPARATOR, Level

OBJ = "tars.tarsconfig.ConfigObj"
EXT_OBJ = "tars.tarsconfig.ConfigExtObj"


def _service_config(path: Path, where: str, *, division: str = "") -> Path:
    sets = f"enableset=y\n    setdivision={division}" if division else "enableset=n"
    path.write_text(
        f"""<tars>
  <application>
    {sets}
    <server>
      app=Test
      server=NodeHello
      localip=127.0.0.1
      config={where}
    </server>
    <client>
      modulename=Test.NodeHello
    </client>
  </application>
</tars>
"""
    )
    return path


async def test_tars_config_reads_merged_files_from_us(node: str, tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'tarsus.db'}")
    app = Application()
    service = host(
        app,
        ConfigService(store, ConfigSettings(limit=0)),
        {OBJ: "tcp -h 127.0.0.1 -p 0 -t 60000", EXT_OBJ: "tcp -h 127.0.0.1 -p 0 -t 60000"},
    )
    await app.start()
    try:
        configs = store.configs
        common = await configs.add(Level.APP, "Test", "common.conf", "<db>\n  host=db1\n</db>")
        server = await configs.add(
            Level.SERVER, "Test.NodeHello", "NodeHello.conf", "<hello>\n  greeting=hi\n</hello>"
        )
        await configs.add(
            Level.NODE,
            "Test.NodeHello",
            "NodeHello.conf",
            "<hello>\n  node=yes\n</hello>",
            host="127.0.0.1",
        )
        await configs.add_reference(server, common)
        where = f"{OBJ}@{service.adapters[0].bound_endpoint}"
        conf = _service_config(tmp_path / "Test.NodeHello.config.conf", where)
        run = await run_script(node, "config_client.js", str(conf))
        assert run.status == 0, run.out.decode() + run.stderr_tail()
        got = json.loads(run.out)
        assert got["server"] == MERGE_SEPARATOR.join(
            [
                "<db>\n  host=db1\n</db>",
                "<hello>\n  greeting=hi\n</hello>",
                "<hello>\n  node=yes\n</hello>",
            ]
        )
        # the SDK's own TC_Config parser reads the merged text: later parts win
        assert got["parsed"]["db"] == {"host": "db1"}
        assert got["parsed"]["hello"]["greeting"] == "hi"
        assert got["parsed"]["hello"]["node"] == "yes"
        assert got["app"] == "<db>\n  host=db1\n</db>"
        assert got["list"] == ["NodeHello.conf"]
        # a file that is not there: an empty file, as from upstream (the SDK ignores the
        # return code, so a reason in the text would be taken for the file)
        assert got["missing"] == {"text": ""}
    finally:
        await app.stop(drain_timeout=1.0)
        await store.close()
