"""Servers in their own containers: run type ``container`` (upstream TarsFramework
``NodeServer/CommandStart.cpp``, the docker branch of ``startNormal``).

A server whose descriptor says ``runType = "container"`` is started by the node through the
Docker Engine API (a Docker daemon, or podman's Docker-compatible service) from its base
image (``baseImage``, the ``t_base_image`` row its ``base_image_id`` names), and is then
supervised exactly as a process:

- **the same command** as for a process (:func:`~tarsus.framework.node.launch.launch_spec`),
  except that a Python server runs on the image's ``python3`` with its package's venv on
  ``PYTHONPATH`` (the venv's own interpreter is the node's, which the image does not have);
- **the same files**: the server directory (config, package, venv, data) and its log
  directory are bind-mounted at the same paths, so the generated config is valid inside;
  the output goes to the same log file, appended (``sh -c 'exec "$@" >>LOG 2>&1'``);
- **host networking and the host's process namespace** (``NetworkMode``/``PidMode``
  ``host``): the server listens on the node's addresses and the pid it sends with its
  heartbeats is the node's view of it. So the node watches the container's process by pid
  (pidfd: an exit is seen at once), stops it as a process (``AdminF.shutdown``, then SIGKILL
  to its group) and adopts it after a node restart by pid, start time and command line;
- **the node's user** (``User`` = the node's uid:gid): files it writes are the node's, and
  heartbeats pass the node's check that the reporting process is its user's;
- ``AutoRemove``: the container goes when its process ends (a start replaces any container
  left with the server's name, as upstream does);
- labels ``io.tarsus.server`` (``App.Server``), ``io.tarsus.node`` (the node's name) and
  ``io.tarsus.data-dir`` (the node's data directory, which is what makes a node on a machine:
  its cache and its servers live there): a node that restarts finds its servers' containers
  through the API (:meth:`ContainerEngine.find`).

The engine is only needed to start a container. Containers outlive the engine's API service
(podman's ``conmon`` supervises them, as ``containerd-shim`` does Docker's) and the node
watches them by pid: an engine that is down stops nothing; starts fail (and are retried by
the monitor) until it is back. See docs/node.md, "Servers in containers".
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import aiodocker
import aiohttp
from aiodocker.containers import DockerContainer

from tarsus.framework.node.config import ServerLayout
from tarsus.framework.node.launch import LaunchSpec
from tarsus.framework.node.process import ProcessHandle

__all__ = [
    "CONTAINER",
    "LABEL_DATA_DIR",
    "LABEL_NODE",
    "LABEL_SERVER",
    "ContainerEngine",
    "ContainerError",
    "ContainerHandle",
    "container_name",
    "server_mounts",
]

log = logging.getLogger("tarsus.framework.node.container")

#: ``t_server_conf.run_type`` of a server that runs in a container (upstream's value)
CONTAINER = "container"
LABEL_SERVER = "io.tarsus.server"
LABEL_NODE = "io.tarsus.node"
LABEL_DATA_DIR = "io.tarsus.data-dir"
#: what runs the command with its output appended to the server's log file ($0)
_REDIRECT = ("/bin/sh", "-c", 'exec "$@" >>"$0" 2>&1')
#: aiodocker's status for "could not connect" (no HTTP answer at all)
_NO_CONNECTION = 900
#: times a create is retried while the engine still removes the previous container
_NAME_RETRIES = 20


class ContainerError(Exception):
    """The engine could not (or would not) start the container; the message says why."""


class ContainerHandle(ProcessHandle):
    """The main process of a server's container (a host pid: ``PidMode`` host), with the
    container's id."""

    container_id: str = ""

    @classmethod
    def of(cls, pid: int, container_id: str) -> ContainerHandle | None:
        handle = cls.adopt(pid)
        if handle is None:
            return None
        assert isinstance(handle, ContainerHandle)
        handle.container_id = container_id
        return handle

    def __repr__(self) -> str:
        return f"<ContainerHandle pid={self.pid} container={self.container_id[:12]}>"


def container_name(node: str, server_id: str, data_dir: Path) -> str:
    """``tarsus.<node>.<App>.<Server>.<hash of the data dir>``, with what Docker refuses in
    a name made ``_`` (nodes on one machine share its engine: each has its own names)."""
    digest = hashlib.sha256(str(Path(data_dir).absolute()).encode()).hexdigest()[:8]
    return re.sub(r"[^a-zA-Z0-9_.-]", "_", f"tarsus.{node}.{server_id}.{digest}")


def server_mounts(layout: ServerLayout) -> list[Path]:
    """The host directories the server's container sees at the same paths: the server
    directory (config, package, venv, data), its log directory, and the executable's and
    config's directories when they lie elsewhere (an ``exePath`` given by an operator)."""
    wanted = [layout.server_dir, layout.log_dir, layout.exe_path, layout.conf_file.parent]
    mounts: list[Path] = []
    for path in wanted:
        path = Path(os.path.abspath(path))
        if not any(path == m or m in path.parents for m in mounts):
            mounts = [m for m in mounts if path not in m.parents] + [path]
    return mounts


def _own_env(env: Mapping[str, str]) -> list[str]:
    """What the launch adds to the node's environment (the container does not inherit the
    node's own variables: its image sets ``PATH`` and the rest)."""
    return [f"{k}={v}" for k, v in env.items() if os.environ.get(k) != v]


class ContainerEngine:
    """A Docker Engine API (``unix:///var/run/docker.sock``, podman's
    ``unix:///run/podman/podman.sock``...), reached on demand; every call bounded by
    ``timeout`` seconds. ``url`` "" takes ``DOCKER_HOST``, else Docker's default socket."""

    def __init__(self, url: str = "", *, timeout: float = 30.0) -> None:
        self.url = url or os.environ.get("DOCKER_HOST", "") or "unix:///var/run/docker.sock"
        self.timeout = timeout
        self._docker: aiodocker.Docker | None = None

    def _client(self) -> aiodocker.Docker:
        if self._docker is None:
            self._docker = aiodocker.Docker(url=self.url, api_version="v1.41")
        return self._docker

    async def close(self) -> None:
        docker, self._docker = self._docker, None
        if docker is not None:
            await docker.close()

    def _unreachable(self, e: BaseException) -> ContainerError:
        return ContainerError(f"container engine {self.url} does not answer: {e}")

    def _failed(self, e: aiodocker.DockerError, image: str = "") -> ContainerError:
        if e.status == _NO_CONNECTION:
            return self._unreachable(e)
        return ContainerError(self._explain(e, image))

    async def ping(self) -> bool:
        """Whether the engine answers now (within 5 s at most)."""
        try:
            async with asyncio.timeout(min(self.timeout, 5.0)):
                await self._client().version()
        except (aiodocker.DockerError, aiohttp.ClientError, OSError, TimeoutError):
            return False
        return True

    async def run(
        self,
        *,
        name: str,
        image: str,
        spec: LaunchSpec,
        mounts: Iterable[Path],
        labels: Mapping[str, str],
    ) -> ContainerHandle:
        """Start ``spec`` in a new container ``name`` from ``image`` (replacing any
        container of that name); its main process's handle."""
        config: dict[str, Any] = {
            "Image": image,
            "Cmd": [*_REDIRECT, str(spec.log_file), *spec.argv],
            "Env": _own_env(spec.env),
            "WorkingDir": str(spec.cwd),
            "User": f"{os.getuid()}:{os.getgid()}",
            "Labels": dict(labels),
            "HostConfig": {
                "NetworkMode": "host",
                "PidMode": "host",
                "AutoRemove": True,
                "Binds": [f"{m}:{m}" for m in mounts]
                + (["/etc/localtime:/etc/localtime:ro"] if Path("/etc/localtime").exists() else []),
            },
        }
        spec.log_file.parent.mkdir(parents=True, exist_ok=True)
        spec.cwd.mkdir(parents=True, exist_ok=True)
        try:
            async with asyncio.timeout(self.timeout):
                container = await self._create(name, config)
                await container.start()
                info = await container.show()
        except aiodocker.DockerError as e:
            raise self._failed(e, image) from None
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            raise self._unreachable(e) from None
        pid = int((info.get("State") or {}).get("Pid") or 0)
        handle = ContainerHandle.of(pid, container.id) if pid > 0 else None
        if handle is None:  # ended already: its output says why
            raise ContainerError(
                f"container {name} ({container.id[:12]}) exited at once; see {spec.log_file}"
            )
        return handle

    async def _create(self, name: str, config: dict[str, Any]) -> DockerContainer:
        docker = self._client()
        for _ in range(_NAME_RETRIES):
            await self._remove(name)
            try:
                return await docker.containers.create(config, name=name)
            except aiodocker.DockerError as e:
                if e.status != 409:  # 409: the old one is still being removed
                    raise
            await asyncio.sleep(0.05)
        return await docker.containers.create(config, name=name)

    async def _remove(self, name: str) -> None:
        with contextlib.suppress(aiodocker.DockerError):  # 404: none; 409: being removed
            await self._client().containers.container(name).delete(force=True)

    @staticmethod
    def _explain(e: aiodocker.DockerError, image: str) -> str:
        if e.status == 404 and "image" in e.message.lower():
            return (
                f"image {image} is not on this node's container engine: build or pull it "
                f"there first ({e.message})"
            )
        return f"the container engine refused: {e.message}"

    async def find(self, labels: Mapping[str, str]) -> ContainerHandle | None:
        """The running container with these ``labels`` (a server's, as :meth:`run` got
        them), as a handle on its main process; None when there is none.
        :class:`ContainerError` when the engine cannot be asked."""
        filters = {
            "label": [f"{k}={v}" for k, v in labels.items()],
            "status": ["running"],
        }
        try:
            async with asyncio.timeout(self.timeout):
                found = await self._client().containers.list(filters=filters)
                for container in found:
                    info = await container.show()
                    pid = int((info.get("State") or {}).get("Pid") or 0)
                    handle = ContainerHandle.of(pid, container.id) if pid > 0 else None
                    if handle is not None:
                        return handle
        except aiodocker.DockerError as e:
            raise self._failed(e) from None
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            raise self._unreachable(e) from None
        return None
