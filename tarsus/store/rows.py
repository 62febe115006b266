"""Plain, frozen records of the rows the repositories return.

Field names are exactly the column names, so code written against upstream's SQL reads the same
here. Statements name the columns they read (:attr:`RowReader.columns`), never ``SELECT *``:
a column that upstream's tools drop from the database (TarsWeb's schema sync drops
``t_server_conf.grid_flag``, which its model lacks) is simply not read, so it may be absent.
A ``NULL`` in a text or number column reads as ``""`` / ``0``, as upstream's C++ reads it
(``TC_Mysql`` gives empty strings); only date columns keep ``None``. State columns are read
lower-case, since upstream writers send ``Active`` and rely on MySQL comparing case-insensitively.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Column, Float, Select, Table, select
from sqlalchemy.types import DateTime, Integer, String, Text

from tarsus.store.schema import (
    t_adapter_conf,
    t_node_info,
    t_profile_template,
    t_server_conf,
    t_server_patchs,
)

__all__ = ["AdapterRow", "NodeRow", "PatchRow", "RowReader", "ServerRow", "TemplateRow"]


@dataclass(frozen=True, slots=True)
class ServerRow:
    """One ``t_server_conf`` row: a deployed server instance on one node."""

    id: int
    application: str
    server_name: str
    node_group: str
    node_name: str
    registry_timestamp: datetime | None
    base_path: str
    exe_path: str
    template_name: str
    bak_flag: int
    setting_state: str
    present_state: str
    process_id: int
    patch_version: str
    patch_time: datetime | None
    patch_user: str
    tars_version: str
    posttime: datetime | None
    lastuser: str
    server_type: str
    start_script_path: str
    stop_script_path: str
    monitor_script_path: str
    enable_group: str
    enable_set: str
    set_name: str
    set_area: str
    set_group: str
    ip_group_name: str
    profile: str
    source: str
    config_center_port: int
    async_thread_num: int
    server_important_type: str
    flow_state: str
    run_type: str
    base_image_id: int

    @property
    def server_id(self) -> str:
        """``App.Server_node``, upstream's id of an instance in logs and notifications."""
        return f"{self.application}.{self.server_name}_{self.node_name}"


@dataclass(frozen=True, slots=True)
class AdapterRow:
    """One ``t_adapter_conf`` row: a servant (object) of an instance and its endpoint."""

    id: int
    application: str
    server_name: str
    node_name: str
    adapter_name: str
    registry_timestamp: datetime | None
    thread_num: int
    endpoint: str
    max_connections: int
    allow_ip: str
    servant: str
    queuecap: int
    queuetimeout: int
    posttime: datetime | None
    lastuser: str
    protocol: str
    handlegroup: str


@dataclass(frozen=True, slots=True)
class NodeRow:
    """One ``t_node_info`` row: a registered tarsnode and its last heartbeat."""

    id: int
    node_name: str
    node_obj: str
    endpoint_ip: str
    endpoint_port: int
    data_dir: str
    load_avg1: float
    load_avg5: float
    load_avg15: float
    last_reg_time: datetime | None
    last_heartbeat: datetime | None
    setting_state: str
    present_state: str
    tars_version: str
    template_name: str
    modify_time: datetime | None
    group_id: int
    label: str


@dataclass(frozen=True, slots=True)
class TemplateRow:
    """One ``t_profile_template`` row: a config template and the name of its parent."""

    id: int
    template_name: str
    parents_name: str
    profile: str
    posttime: datetime | None
    lastuser: str


@dataclass(frozen=True, slots=True)
class PatchRow:
    """One ``t_server_patchs`` row: a release package of a server in the package store.

    ``id`` is the patch id a publish names; ``server`` is ``App.Server``; ``tgz`` the file's
    name under ``App/Server`` on the package store; ``update_text`` the uploader's comment;
    ``default_version`` 1 for the server's default package; ``publish*`` the last publish.
    """

    id: int
    server: str
    version: str
    tgz: str
    update_text: str
    reason_select: str
    is_server_group: int
    publish: int
    publish_time: datetime | None
    publish_user: str
    upload_time: datetime | None
    upload_user: str
    posttime: datetime | None
    lastuser: str
    is_release_version: str
    package_type: int
    group_id: str
    default_version: int
    md5: str
    svn_version: str


R = TypeVar("R")

_LOWER_CASE = frozenset({"setting_state", "present_state", "flow_state"})


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _lower(value: Any) -> str:
    return "" if value is None else str(value).lower()


def _int(value: Any) -> int:
    return 0 if value is None else int(value)


def _float(value: Any) -> float:
    return 0.0 if value is None else float(value)


def _keep(value: Any) -> Any:
    return value


class RowReader(Generic[R]):
    """Reads the columns named by the fields of ``cls`` from ``table`` into ``cls`` records.

    ``select(*reader.columns)`` is the statement; ``reader(row)`` turns one result row into a
    record. Checks once, at import, that every field of ``cls`` is a column of ``table``; the
    table may have more columns (they are not read).
    """

    def __init__(self, table: Table, cls: Callable[..., R]) -> None:
        fields = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        missing = [name for name in fields if name not in table.c]
        if missing:
            raise TypeError(f"{cls!r} fields {missing} are not columns of {table.name}")
        self.columns: tuple[Column[Any], ...] = tuple(table.c[name] for name in fields)
        readers: list[Callable[[Any], Any]] = []
        for column in self.columns:
            kind = column.type
            if column.name in _LOWER_CASE:
                readers.append(_lower)
            elif isinstance(kind, DateTime):
                readers.append(_keep)
            elif isinstance(kind, Float):
                readers.append(_float)
            elif isinstance(kind, Integer):
                readers.append(_int)
            elif isinstance(kind, String | Text):
                readers.append(_text)
            else:  # pragma: no cover - a new column type needs a reader
                raise TypeError(f"no reader for {table.name}.{column.name} of type {kind!r}")
        self._readers = tuple(readers)
        self._cls = cls

    def select(self) -> Select[Any]:
        """``SELECT <the named columns> FROM <table>``."""
        return select(*self.columns)

    def __call__(self, row: Sequence[Any]) -> R:
        return self._cls(*[f(v) for f, v in zip(self._readers, row, strict=True)])


read_server = RowReader(t_server_conf, ServerRow)
read_adapter = RowReader(t_adapter_conf, AdapterRow)
read_node = RowReader(t_node_info, NodeRow)
read_template = RowReader(t_profile_template, TemplateRow)
read_patch = RowReader(t_server_patchs, PatchRow)
