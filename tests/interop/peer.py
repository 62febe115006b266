"""The Node Tars SDK (@tars/stream) as a codec peer, driven from Python.

``NodeCodecPeer`` runs ``node/codec_peer.js`` as one long-lived subprocess and talks to it
in line-delimited JSON. It turns a Tarsus struct class into the peer's schema (from
``_tars_fields_``) and converts values both ways, so a test can say "encode this value with
Node" or "decode these bytes with Node" and compare with what ``tarsus.codec`` does.

The JSON value mapping (see the header of codec_peer.js): long values travel as decimal
strings (exact to 2^63 on both sides), bytes as hex, maps as ``[[key, value], ...]``, floats
as numbers or "NaN"/"Infinity"/"-Infinity", structs as objects keyed by field name.

The RPC and registry tests share the rest: ``require_node`` (the ``node`` fixture),
``run_script`` (one Node script run to its end) and ``Relay`` (a TCP relay that records what
went over the wire).
"""

from __future__ import annotations

import asyncio
import enum
import fcntl
import json
import math
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tarsus.codec import RequestPacket, ResponsePacket, decode
from tarsus.codec.types import BYTES, LONG, Map, Scalar, Vector
from tarsus.rpc.framing import split_frames

NODE_DIR = Path(__file__).resolve().parent / "node"
PEER_SCRIPT = NODE_DIR / "codec_peer.js"


class NodePeerError(RuntimeError):
    """The Node side refused a request (its message says why: e.g. a decode error)."""


def _is_struct(t: Any) -> bool:
    return isinstance(t, type) and hasattr(t, "_tars_fields_")


def _is_enum(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, enum.IntEnum)


# ---------------------------------------------------------------------------------------------
# Schemas


def type_schema(t: Any) -> dict[str, Any]:
    """The peer's JSON type description of a ``tarsus.codec.types`` descriptor."""
    if t == BYTES:
        return {"kind": "bytes"}
    if isinstance(t, Scalar):
        return {"kind": t.name}
    if isinstance(t, Vector):
        return {"kind": "vector", "elem": type_schema(t.elem)}
    if isinstance(t, Map):
        return {"kind": "map", "key": type_schema(t.key), "value": type_schema(t.value)}
    if _is_enum(t):
        return {"kind": "enum"}
    if _is_struct(t):
        return {"kind": "struct", "schema": struct_schema(t)}
    raise TypeError(f"no peer schema for type {t!r}")


def struct_schema(cls: type) -> dict[str, Any]:
    """The peer's schema S of a Tarsus struct class (from its ``_tars_fields_``)."""
    fields = []
    for f in cls._tars_fields_:  # type: ignore[attr-defined]
        entry: dict[str, Any] = {
            "tag": f.tag,
            "name": f.name,
            "required": bool(f.required),
            "type": type_schema(f.type),
        }
        if f.has_default and f.default is not None:
            entry["default"] = to_json(f.default, f.type)
        fields.append(entry)
    return {"name": cls._tars_name_, "fields": fields}  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------
# Values


def _float_to_json(v: float) -> float | str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return float(v)


def _float_from_json(v: Any) -> float:
    if isinstance(v, str):
        return float(v.lower().replace("infinity", "inf"))
    return float(v)


def to_json(value: Any, t: Any) -> Any:
    """A Tarsus value of type ``t`` in the peer's JSON form."""
    if t == BYTES:
        return bytes(value).hex()
    if isinstance(t, Scalar):
        if t == LONG:
            return str(int(value))
        if t.name in ("float", "double"):
            return _float_to_json(value)
        if t.name == "bool":
            return bool(value)
        if t.name == "string":
            return value
        return int(value)
    if isinstance(t, Vector):
        return [to_json(x, t.elem) for x in value]
    if isinstance(t, Map):
        return [[to_json(k, t.key), to_json(v, t.value)] for k, v in value.items()]
    if _is_enum(t):
        return int(value)
    if _is_struct(t):
        return {
            f.name: to_json(getattr(value, f.name), f.type)
            for f in t._tars_fields_  # type: ignore[attr-defined]
        }
    raise TypeError(f"no peer value form for type {t!r}")


def from_json(j: Any, t: Any) -> Any:
    """The Tarsus value of type ``t`` for the peer's JSON form ``j``."""
    if t == BYTES:
        return bytes.fromhex(j)
    if isinstance(t, Scalar):
        if t.name in ("float", "double"):
            return _float_from_json(j)
        if t.name == "bool":
            return bool(j)
        if t.name == "string":
            return j
        return int(j)
    if isinstance(t, Vector):
        return [from_json(x, t.elem) for x in j]
    if isinstance(t, Map):
        return {from_json(k, t.key): from_json(v, t.value) for k, v in j}
    if _is_enum(t):
        try:
            return t(int(j))
        except ValueError:  # a value the enum does not declare stays an int
            return int(j)
    if _is_struct(t):
        return t(
            **{
                f.name: from_json(j[f.name], f.type)
                for f in t._tars_fields_  # type: ignore[attr-defined]
                if f.name in j
            }
        )
    raise TypeError(f"no peer value form for type {t!r}")


# ---------------------------------------------------------------------------------------------
# The process


def node_executable() -> str | None:
    return shutil.which("node")


def ensure_node_modules() -> None:
    """Install the pinned SDK (``npm ci``) if ``node_modules`` is missing; one process at a
    time (parallel test workers each ask), the others wait for it and find it installed."""
    installed = NODE_DIR / "node_modules" / "@tars" / "stream"
    if installed.is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(f"node_modules missing in {NODE_DIR} and npm is not on PATH")
    with open(Path(tempfile.gettempdir()) / "tarsus-node-sdk-npm-ci.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if installed.is_dir():
            return
        proc = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"npm ci failed in {NODE_DIR}:\n{proc.stdout}\n{proc.stderr}")


def peer_env() -> dict[str, str]:
    env = dict(os.environ)
    # A set TARS_CONFIG / TARS_MONITOR makes the Node SDK reach for framework services.
    env.pop("TARS_CONFIG", None)
    env.pop("TARS_MONITOR", None)
    return env


def require_node() -> str:
    """The ``node`` executable, the SDK installed beside it; skips the test without Node."""
    exe = node_executable()
    if exe is None:
        pytest.skip("Node interop skipped: `node` is not on PATH (install Node.js 20 to run it)")
    ensure_node_modules()
    return exe


@dataclass(frozen=True)
class ScriptRun:
    """How a Node script run ended."""

    status: int
    out: bytes
    err: bytes

    def stderr_tail(self) -> str:
        return self.err.decode("utf-8", "replace")[-3000:]


async def run_script(node: str, script: str, *args: str, timeout: float = 30) -> ScriptRun:
    """Run ``node SCRIPT ARGS...`` in ``node/`` to its end; fails the test after ``timeout`` s."""
    proc = await asyncio.create_subprocess_exec(
        node,
        script,
        *args,
        cwd=NODE_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=peer_env(),
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        pytest.fail(f"{script} {' '.join(args)} did not finish within {timeout:g} s")
    assert proc.returncode is not None
    return ScriptRun(proc.returncode, out, err)


class NodeCodecPeer:
    """One ``node codec_peer.js`` process. Use as a context manager, or call ``close()``."""

    def __init__(self, node: str | None = None) -> None:
        node = node or node_executable()
        if node is None:
            raise RuntimeError("node is not on PATH")
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process
        self._proc = subprocess.Popen(
            [node, str(PEER_SCRIPT)],
            cwd=NODE_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=peer_env(),
        )
        self._lock = threading.Lock()
        self.versions: dict[str, str] = self.request({"op": "ping"})["versions"]

    def close(self) -> None:
        proc = self._proc
        if proc.poll() is None:
            assert proc.stdin is not None
            proc.stdin.close()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        self._stderr.close()

    def __enter__(self) -> NodeCodecPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _stderr_tail(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read()[-4000:].decode("utf-8", "replace")

    def request(self, req: dict[str, Any]) -> dict[str, Any]:
        """Send one request and return its answer; ``NodePeerError`` if Node refused it."""
        line = json.dumps(req, ensure_ascii=False, allow_nan=False).encode("utf-8") + b"\n"
        with self._lock:
            assert self._proc.stdin is not None and self._proc.stdout is not None
            try:
                self._proc.stdin.write(line)
                self._proc.stdin.flush()
                answer = self._proc.stdout.readline()
            except BrokenPipeError:
                answer = b""
            if not answer:
                raise RuntimeError(
                    f"codec_peer.js exited (status {self._proc.poll()}); stderr:\n"
                    + self._stderr_tail()
                )
        res: dict[str, Any] = json.loads(answer)
        if "error" in res:
            raise NodePeerError(res["error"])
        return res

    # -- struct codec ---------------------------------------------------------------------------

    def encode(self, obj: Any) -> bytes:
        """Node's encoding of a Tarsus struct instance (its fields back to back)."""
        cls = type(obj)
        res = self.request(
            {"op": "encode", "schema": struct_schema(cls), "value": to_json(obj, cls)}
        )
        return bytes.fromhex(res["hex"])

    def decode(self, data: bytes, cls: type) -> Any:
        """Node's decoding of ``data`` as struct ``cls``, converted to a ``cls`` instance."""
        res = self.request({"op": "decode", "schema": struct_schema(cls), "hex": data.hex()})
        return from_json(res["value"], cls)

    # -- TUP ------------------------------------------------------------------------------------

    def tup_encode(self, items: Iterable[tuple[str, Any, Any]], version: int = 3) -> bytes:
        """Node ``UniAttribute`` bytes for ``(name, value, type)`` items (``encode()``)."""
        res = self.request(
            {
                "op": "tup_encode",
                "version": version,
                "items": [
                    {"name": name, "type": type_schema(t), "value": to_json(value, t)}
                    for name, value, t in items
                ],
            }
        )
        return bytes.fromhex(res["hex"])

    def tup_decode(
        self, data: bytes, items: Sequence[tuple[str, Any]], version: int = 3
    ) -> tuple[dict[str, Any], list[str]]:
        """Node's reading of ``data``: ({name: value} for ``(name, type)`` items, all names)."""
        res = self.request(
            {
                "op": "tup_decode",
                "version": version,
                "hex": data.hex(),
                "items": [{"name": name, "type": type_schema(t)} for name, t in items],
            }
        )
        types = dict(items)
        values = {name: from_json(v, types[name]) for name, v in res["values"].items()}
        return values, list(res["names"])

    # -- @tars/rpc's own packet classes ---------------------------------------------------------

    def rpc_encode(self, packet: str, obj: Any) -> bytes:
        """Bytes written by @tars/rpc's ``RequestF.js`` class ``packet`` for ``obj``'s fields."""
        cls = type(obj)
        res = self.request({"op": "rpc_encode", "packet": packet, "value": to_json(obj, cls)})
        return bytes.fromhex(res["hex"])

    def rpc_decode(self, packet: str, data: bytes, cls: type) -> Any:
        """@tars/rpc's ``RequestF.js`` reading of ``data``, as a ``cls`` instance."""
        res = self.request({"op": "rpc_decode", "packet": packet, "hex": data.hex()})
        return from_json(res["value"], cls)


# ---------------------------------------------------------------------------------------------
# The wire


class Relay:
    """A TCP relay in front of a server that records both directions, to see what went over
    the wire: requests as sent by the client, replies as sent by the server."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.upstream = bytearray()
        self.downstream = bytearray()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def __aenter__(self) -> Relay:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        s_reader, s_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        pumps = [
            asyncio.ensure_future(self._pump(c_reader, s_writer, self.upstream)),
            asyncio.ensure_future(self._pump(s_reader, c_writer, self.downstream)),
        ]
        self._tasks.update(pumps)
        await asyncio.gather(*pumps, return_exceptions=True)

    @staticmethod
    async def _pump(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, log: bytearray
    ) -> None:
        try:
            while data := await reader.read(65536):
                log += data
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    def requests(self) -> list[Any]:
        return [decode(body, RequestPacket) for body in split_frames(bytearray(self.upstream))]

    def replies(self, version: int) -> list[Any]:
        packet = RequestPacket if version in (2, 3) else ResponsePacket
        return [decode(body, packet) for body in split_frames(bytearray(self.downstream))]
