"""``t_base_image``: the images servers of run type ``container`` start from (upstream's
"Image management" in TarsWeb; ``t_server_conf.base_image_id`` names a row).

A row is the image's reference as the nodes' container engines know it (``image``:
``localhost/tarsus-python:3f2a...`` or ``registry.example.com/team/runtime:1``), the
registry it is pulled from (``registryId``, a ``t_docker_registry`` row; 0 for none: the
image is built or loaded on each node) and, once an engine has it, its id (``sha``).
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import insert, select, update

from tarsus.store.errors import InvalidInput, NotFound
from tarsus.store.schema import t_base_image, t_server_conf

if TYPE_CHECKING:
    from tarsus.store.engine import Store

__all__ = ["RUN_TYPES", "BaseImageRow", "BaseImages"]

#: ``t_server_conf.run_type``: "" runs a process; "container" a container from its base image
RUN_TYPES = ("", "container")
_IMAGE_LENGTH = int(t_base_image.c.image.type.length or 255)  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class BaseImageRow:
    id: int
    image: str
    registry_id: int
    sha: str
    remark: str


def _check_image(image: str) -> str:
    image = image.strip()
    if not image:
        raise InvalidInput("the base image is empty")
    if len(image) > _IMAGE_LENGTH:
        raise InvalidInput(f"the base image is {len(image)} characters; at most {_IMAGE_LENGTH}")
    if any(c.isspace() or not c.isprintable() for c in image):
        raise InvalidInput(f"the base image {image!r} has blanks or control characters")
    return image


class BaseImages:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def get(self, image_id: int) -> BaseImageRow | None:
        async with self._store.connect() as conn:
            row = (
                await conn.execute(select(t_base_image).where(t_base_image.c.id == image_id))
            ).first()
        return _row(row) if row is not None else None

    async def list(self) -> builtins.list[BaseImageRow]:
        async with self._store.connect() as conn:
            rows = await conn.execute(select(t_base_image).order_by(t_base_image.c.id))
            return [_row(r) for r in rows]

    async def ensure(self, image: str, remark: str = "") -> int:
        """The id of the row for ``image``, added when there is none."""
        image = _check_image(image)
        now = self._store.clock()
        async with self._store.begin() as conn:
            found = (
                await conn.execute(
                    select(t_base_image.c.id).where(t_base_image.c.image == image).limit(1)
                )
            ).scalar()
            if found is not None:
                return int(found)
            result = await conn.execute(
                insert(t_base_image).values(
                    image=image, registryId=0, remark=remark[:255], create_time=now,
                    update_time=now,
                )
            )  # fmt: skip
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    async def set_run_type(
        self, app: str, server: str, node: str, run_type: str, image: str = ""
    ) -> None:
        """Run the instance as a process (``run_type`` "") or in a container from ``image``
        (recorded in ``t_base_image`` when new); :class:`NotFound` if it is not deployed.
        Takes effect at its next start (upstream: stop, change, start)."""
        run_type = run_type.strip().lower()
        if run_type not in RUN_TYPES:
            raise InvalidInput(f'run type {run_type!r}: it is "" (a process) or "container"')
        image_id = 0
        if run_type:
            image_id = await self.ensure(image)
        elif image.strip():
            raise InvalidInput("a base image is only for run type container")
        async with self._store.begin() as conn:
            result = await conn.execute(
                update(t_server_conf)
                .where(
                    t_server_conf.c.application == app,
                    t_server_conf.c.server_name == server,
                    t_server_conf.c.node_name == node,
                )
                .values(run_type=run_type, base_image_id=image_id,
                        registry_timestamp=self._store.clock())
            )  # fmt: skip
        if result.rowcount == 0:
            raise NotFound(f"{app}.{server} is not deployed on node {node!r}")


def _row(row: object) -> BaseImageRow:
    m = row._mapping  # type: ignore[attr-defined]
    return BaseImageRow(
        id=int(m["id"]),
        image=m["image"] or "",
        registry_id=int(m["registryId"] or 0),
        sha=m["sha"] or "",
        remark=m["remark"] or "",
    )
