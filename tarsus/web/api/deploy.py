"""``POST /api/v1/servers`` (deploy) and ``POST /api/v1/servers/{app}/{server}/expand``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, Field

from tarsus.ops import deploy
from tarsus.ops.access import Perm
from tarsus.web.params import PlatformDep
from tarsus.web.security import ActorDep, access

router = APIRouter(prefix="/api/v1", tags=["deploy"])


class Obj(BaseModel):
    name: str
    #: 0: the lowest free port from 10000 on each node
    port: int = 0
    threads: int = 5
    max_connections: int = 10240
    queuecap: int = 100000
    queuetimeout: int = 60000
    #: tars or not_tars
    protocol: str = "tars"
    allow_ip: str = ""


class NewServer(BaseModel):
    application: str
    server_name: str
    nodes: list[str] = Field(max_length=deploy.MAX_NODES)
    objs: list[Obj] = Field(max_length=deploy.MAX_SERVANTS)
    server_type: str = "tars_python"
    #: "" is the type's default template
    template: str = ""
    #: process or container
    run_type: str = "process"
    #: the image of a container (run_type container)
    image: str = ""


class Expansion(BaseModel):
    #: the instance whose configuration is copied
    source_node: str
    nodes: list[str] = Field(max_length=deploy.MAX_NODES)
    #: the source's ports (default), or free ones on each node
    same_ports: bool = True


@router.post("/servers", status_code=201, **access(Perm.OPERATE, "any"))
async def deploy_server(body: NewServer, actor: ActorDep, platform: PlatformDep) -> Any:
    """Deploy a server onto nodes (inactive; start it with ``POST /api/v1/tasks``)."""
    req = deploy.DeployRequest(
        application=body.application.strip(),
        server_name=body.server_name.strip(),
        nodes=body.nodes,
        servants=[deploy.Servant(**o.model_dump()) for o in body.objs],
        server_type=body.server_type.strip(),
        template=body.template,
        run_type=body.run_type.strip(),
        image=body.image,
    )
    done = await deploy.deploy(platform, actor, req)
    return {"deployed": jsonable_encoder(done), "template": req.template}


@router.post("/servers/{app}/{server}/expand", status_code=201, **access(Perm.OPERATE, "app"))
async def expand(
    app: str, server: str, body: Expansion, actor: ActorDep, platform: PlatformDep
) -> Any:
    """Deploy the instance on ``source_node`` as it is onto more nodes."""
    done = await deploy.expand(
        platform, actor, app, server, body.source_node, body.nodes, same_ports=body.same_ports
    )
    return {"deployed": jsonable_encoder(done)}
