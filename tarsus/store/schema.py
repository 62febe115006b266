"""The ``db_tars`` tables, as upstream's ``deploy/framework/sql/db_tars.sql`` declares them.

Table, column, key and index names are upstream's, so the upstream web console and tools can
share the database with Tarsus. Where we differ, on purpose:

* Upstream ``ENUM`` columns are ``VARCHAR`` here, holding the lower-case values
  (``'active'``, ``'inactive'``, ``'activating'``, ``'deactivating'``, ``'destroyed'``; the
  ``server_type`` values). The repositories validate values; the database does not. Tarsus
  writes only upstream's ``server_type`` values, so upstream's tools may convert the column to
  their ``ENUM``: a Python server is stored as ``tars_cpp`` (:mod:`tarsus.store.server_types`).
* ``registry_timestamp`` / ``modify_time`` are ``DATETIME`` (upstream ``TIMESTAMP``), default now
  and, on MySQL, ``ON UPDATE CURRENT_TIMESTAMP`` (:mod:`tarsus.store.ddl`). Tarsus's own writes
  always set them from :meth:`Store.clock`, so SQLite behaves the same.
* Tables are ``utf8mb4`` on MySQL (upstream ``utf8``).
* ``t_server_patchs`` keeps one index on ``server``; upstream declares two identical ones
  (``index_patchs_i1`` too), which MariaDB warns it will stop accepting.
* ``t_base_image.sha`` is here: upstream's registry reads and writes it, but its upgrade
  script adds ``sha`` to ``t_server_conf`` by mistake.
* ``t_server_notifys`` is not in ``db_tars.sql``; its DDL follows upstream's web model.

This module describes the head revision; the migrations in :mod:`tarsus.store.migrations`
create and evolve real databases. A change here needs a new migration.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    CHAR,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql

from tarsus.store.ddl import AUTO_INCREMENT, now_column

__all__ = [
    "ADAPTER_DEFAULTS",
    "PRESENT_STATES",
    "SERVER_TYPES",
    "SETTING_STATES",
    "UPSTREAM_SERVER_TYPES",
    "metadata",
    "t_adapter_conf",
    "t_alert_events",
    "t_alert_rules",
    "t_base_image",
    "t_config_files",
    "t_config_history_files",
    "t_config_references",
    "t_docker_registry",
    "t_framework_key",
    "t_group_priority",
    "t_machine_tars_info",
    "t_node_info",
    "t_profile_template",
    "t_registry_info",
    "t_server_conf",
    "t_server_group_relation",
    "t_server_group_rule",
    "t_server_notifys",
    "t_server_patchs",
    "t_task",
    "t_task_item",
    "t_web_audit",
    "t_web_grant",
    "t_web_release_conf",
    "t_web_session",
    "t_web_token",
    "t_web_user",
]

#: ``setting_state`` values (desired state; written by the management path).
SETTING_STATES = ("active", "inactive")
#: ``present_state`` values (observed state; written from node reports).
PRESENT_STATES = ("active", "inactive", "activating", "deactivating", "destroyed")
#: Upstream's ``server_type`` enum, in its order: the values Tarsus writes.
UPSTREAM_SERVER_TYPES = ("tars_cpp", "not_tars", "tars_java", "tars_nodejs", "tars_php", "tars_go")
#: What a server's type may be: upstream's values plus ``tars_python`` (stored as
#: ``tars_cpp``, see :mod:`tarsus.store.server_types`).
SERVER_TYPES = (*UPSTREAM_SERVER_TYPES, "tars_python")
#: Upstream adapter defaults that are not column defaults in the DDL.
ADAPTER_DEFAULTS = {"queuecap": 10000, "queuetimeout": 60000}

_TABLE_OPTS: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}

metadata = MetaData()

# Column type helpers: portable types with the exact MySQL type where it differs.
_UINT = Integer().with_variant(mysql.INTEGER(unsigned=True), "mysql", "mariadb")
_TINYINT = Integer().with_variant(mysql.TINYINT(), "mysql", "mariadb")
_LONGTEXT = Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
#: An upstream ENUM column: wide enough for every value (``'deactivating'`` is the longest).
_STATE = String(16)


def _pk() -> Column[Any]:
    return Column("id", Integer, primary_key=True, autoincrement=True)


def _str(name: str, length: int, default: str | None = "", *, nullable: bool = True) -> Column[Any]:
    """``varchar(length) [NOT NULL] DEFAULT default`` (no default when ``default`` is None)."""
    return Column(name, String(length), nullable=nullable, server_default=default)


def _int(name: str, default: int | None = 0, *, nullable: bool = True) -> Column[Any]:
    return Column(
        name, Integer, nullable=nullable, server_default=None if default is None else str(default)
    )


t_adapter_conf = Table(
    "t_adapter_conf",
    metadata,
    _pk(),
    _str("application", 50),
    _str("server_name", 128),
    _str("node_name", 50),
    _str("adapter_name", 100),
    now_column("registry_timestamp"),
    _int("thread_num", 1),
    _str("endpoint", 128),
    _int("max_connections", 1000),
    _str("allow_ip", 255, nullable=False),
    _str("servant", 128),
    _int("queuecap", None),
    _int("queuetimeout", None),
    Column("posttime", DateTime, nullable=True),
    _str("lastuser", 30, None),
    _str("protocol", 64, "tars"),
    _str("handlegroup", 64),
    UniqueConstraint("application", "server_name", "node_name", "adapter_name", name="application"),
    Index("adapter_conf_endpoint_index", "endpoint"),
    Index("index_regtime_1", "registry_timestamp"),
    **_TABLE_OPTS,
)

t_config_files = Table(
    "t_config_files",
    metadata,
    _pk(),
    _str("server_name", 128),
    _str("set_name", 16, nullable=False),
    _str("set_area", 16, nullable=False),
    _str("set_group", 16, nullable=False),
    _str("host", 50, nullable=False),
    _str("filename", 128, None),
    Column("config", _LONGTEXT, nullable=True),
    Column("posttime", DateTime, nullable=True),
    _str("lastuser", 50, None),
    _int("level", 2),
    _int("config_flag", 0, nullable=False),
    UniqueConstraint(
        "server_name",
        "filename",
        "host",
        "level",
        "set_name",
        "set_area",
        "set_group",
        name="application",
    ),
    **_TABLE_OPTS,
)

t_config_history_files = Table(
    "t_config_history_files",
    metadata,
    _pk(),
    _int("configid", None),
    _str("reason", 128),
    _str("reason_select", 20, nullable=False),
    Column("content", _LONGTEXT, nullable=True),
    Column("posttime", DateTime, nullable=True),
    _str("lastuser", 50, None),
    **_TABLE_OPTS,
)

t_config_references = Table(
    "t_config_references",
    metadata,
    _pk(),
    _int("config_id", None),
    _int("reference_id", None),
    UniqueConstraint("config_id", "reference_id", name="config_id"),
    **_TABLE_OPTS,
)

t_group_priority = Table(
    "t_group_priority",
    metadata,
    _pk(),
    _str("name", 128),
    Column("group_list", Text, nullable=True),
    _int("list_order", 0),
    _str("station", 128, nullable=False),
    **_TABLE_OPTS,
)

t_machine_tars_info = Table(
    "t_machine_tars_info",
    metadata,
    # AUTO_INCREMENT on MySQL (a UNIQUE key, not the primary key, as upstream); plain on SQLite.
    Column("id", Integer, nullable=True, autoincrement=False, info={AUTO_INCREMENT: True}),
    _str("application", 100, nullable=False),
    _str("server_name", 100, nullable=False),
    _str("app_server_name", 50, nullable=False),
    _str("node_name", 50, nullable=False),
    _str("location", 255, nullable=False),
    _str("machine_type", 50, nullable=False),
    Column("update_time", DateTime, nullable=True),
    _str("update_person", 64, nullable=False),
    PrimaryKeyConstraint("application", "server_name", "node_name"),
    UniqueConstraint("id", name="id"),
    Index("tmachine_i_2", "node_name", "server_name"),
    **_TABLE_OPTS,
)

t_node_info = Table(
    "t_node_info",
    metadata,
    _pk(),
    _str("node_name", 128),
    _str("node_obj", 128),
    _str("endpoint_ip", 50),
    _int("endpoint_port", 0),
    _str("data_dir", 128),
    Column("load_avg1", Float, nullable=True, server_default="0"),
    Column("load_avg5", Float, nullable=True, server_default="0"),
    Column("load_avg15", Float, nullable=True, server_default="0"),
    Column("last_reg_time", DateTime, nullable=True),
    Column("last_heartbeat", DateTime, nullable=True),
    Column("setting_state", _STATE, nullable=True, server_default="inactive"),
    Column("present_state", _STATE, nullable=True, server_default="inactive"),
    _str("tars_version", 128, nullable=False),
    _str("template_name", 128, nullable=False),
    now_column("modify_time"),
    _int("group_id", -1),
    Column("label", Text, nullable=True),
    UniqueConstraint("node_name", name="node_name"),
    Index("indx_node_info_1", "last_heartbeat"),
    **_TABLE_OPTS,
)

t_profile_template = Table(
    "t_profile_template",
    metadata,
    _pk(),
    _str("template_name", 128),
    _str("parents_name", 128),
    Column("profile", Text, nullable=False),
    Column("posttime", DateTime, nullable=True),
    _str("lastuser", 30, None),
    UniqueConstraint("template_name", name="template_name"),
    **_TABLE_OPTS,
)

t_registry_info = Table(
    "t_registry_info",
    metadata,
    _pk(),
    _str("locator_id", 128, nullable=False),
    _str("servant", 128, nullable=False),
    _str("endpoint", 128, nullable=False),
    Column("last_heartbeat", DateTime, nullable=True),
    Column("present_state", _STATE, nullable=True, server_default="inactive"),
    _str("tars_version", 128, nullable=False),
    now_column("modify_time"),
    Column("enable_group", CHAR(1), nullable=True, server_default="N"),
    UniqueConstraint("locator_id", "servant", name="locator_id"),
    **_TABLE_OPTS,
)

t_server_conf = Table(
    "t_server_conf",
    metadata,
    _pk(),
    _str("application", 128),
    _str("server_name", 128),
    _str("node_group", 50, nullable=False),
    _str("node_name", 50, nullable=False),
    now_column("registry_timestamp"),
    _str("base_path", 128),
    _str("exe_path", 128, nullable=False),
    _str("template_name", 128, nullable=False),
    _int("bak_flag", 0, nullable=False),
    Column("setting_state", _STATE, nullable=False, server_default="inactive"),
    Column("present_state", _STATE, nullable=False, server_default="inactive"),
    _int("process_id", 0, nullable=False),
    _str("patch_version", 128, nullable=False),
    Column("patch_time", DateTime, nullable=True),
    _str("patch_user", 128, nullable=False),
    _str("tars_version", 128, nullable=False),
    Column("posttime", DateTime, nullable=True),
    _str("lastuser", 30, None),
    Column("server_type", String(32), nullable=False, server_default="tars_cpp"),
    _str("start_script_path", 128, None),
    _str("stop_script_path", 128, None),
    _str("monitor_script_path", 128, None),
    Column("enable_group", CHAR(1), nullable=True, server_default="N"),
    Column("enable_set", CHAR(1), nullable=False, server_default="N"),
    _str("set_name", 16, None),
    _str("set_area", 16, None),
    _str("set_group", 64, None),
    _str("ip_group_name", 64, None),
    Column("profile", Text, nullable=True),
    Column("source", Text, nullable=True),
    _int("config_center_port", 0, nullable=False),
    _int("async_thread_num", 3),
    Column("server_important_type", String(1), nullable=True, server_default="0"),
    _str("grid_flag", 16, "NORMAL", nullable=False),
    Column("flow_state", _STATE, nullable=False, server_default="active"),
    _str("run_type", 32, nullable=False),
    _int("base_image_id", 0),
    UniqueConstraint("application", "server_name", "node_name", name="application"),
    Index("node_name", "node_name"),
    Index("index_i_3", "setting_state", "server_type", "application", "server_name", "node_name"),
    Index("index_regtime", "registry_timestamp"),
    **_TABLE_OPTS,
)

t_base_image = Table(
    "t_base_image",
    metadata,
    _pk(),
    _str("image", 255, nullable=False),
    _int("registryId", 0, nullable=False),
    _str("remark", 255, nullable=False),
    Column("result", Text, nullable=True),
    Column("create_time", DateTime, nullable=True),
    Column("update_time", DateTime, nullable=True),
    # Read and written by upstream's registry (DockerThread), not in db_tars.sql itself.
    _str("sha", 255),
    **_TABLE_OPTS,
)

t_framework_key = Table(
    "t_framework_key",
    metadata,
    _pk(),
    _str("key", 16, "key", nullable=False),
    _str("cuid", 128, nullable=False),
    Column("pri_key", Text, nullable=True),
    _int("autologin", 1),
    Column("update_time", DateTime, nullable=True),
    Index("idx_key", "key"),
    **_TABLE_OPTS,
)

t_docker_registry = Table(
    "t_docker_registry",
    metadata,
    _pk(),
    _str("registry", 255, nullable=False),
    _str("username", 64, nullable=False),
    _str("password", 128, nullable=False),
    _str("remark", 255, nullable=False),
    Column("create_time", DateTime, nullable=True),
    Column("update_time", DateTime, nullable=True),
    **_TABLE_OPTS,
)

t_server_group_relation = Table(
    "t_server_group_relation",
    metadata,
    _pk(),
    _str("application", 90, nullable=False),
    _str("server_group", 50),
    _str("server_name", 50),
    Column("create_time", DateTime, nullable=True),
    _str("creator", 30),
    Index("f_unique", "application", "server_group", "server_name"),
    **_TABLE_OPTS,
)

t_server_group_rule = Table(
    "t_server_group_rule",
    metadata,
    Column("group_id", _UINT, primary_key=True, autoincrement=True),
    Column("ip_order", _STATE, nullable=False, server_default="denny_allow"),
    Column("allow_ip_rule", Text, nullable=True),
    Column("denny_ip_rule", Text, nullable=True),
    _str("lastuser", 50, None),
    now_column("modify_time"),
    _str("group_name", 128),
    _str("group_name_cn", 128),
    UniqueConstraint("group_name", name="group_name_index"),
    **_TABLE_OPTS,
)

t_server_patchs = Table(
    "t_server_patchs",
    metadata,
    _pk(),
    _str("server", 50, None),
    _str("version", 1000),
    Column("tgz", Text, nullable=True),
    _str("update_text", 255, None),
    _str("reason_select", 255, None),
    Column("is_server_group", _TINYINT, nullable=False, server_default="0"),
    Column("publish", _TINYINT, nullable=True),
    Column("publish_time", DateTime, nullable=True),
    _str("publish_user", 30, None),
    Column("upload_time", DateTime, nullable=True),
    _str("upload_user", 30, None),
    Column("posttime", DateTime, nullable=True),
    _str("lastuser", 30, None),
    Column("is_release_version", String(8), nullable=True, server_default="true"),
    Column("package_type", _TINYINT, nullable=True, server_default="0"),
    _str("group_id", 64, nullable=False),
    Column("default_version", _TINYINT, nullable=True, server_default="0"),
    _str("md5", 40, None),
    _str("svn_version", 50, None),
    # Upstream also has index_patchs_i1 on (server), a duplicate MariaDB deprecates; dropped.
    Index("server_patchs_server_index", "server"),
    Index("index_i_2", "tgz", mysql_length={"tgz": 50}),
    **_TABLE_OPTS,
)

t_task = Table(
    "t_task",
    metadata,
    Column("id", _UINT, primary_key=True, autoincrement=True),
    _str("task_no", 40, None),
    Column("serial", _TINYINT, nullable=True),
    _str("user_name", 20, None),
    Column("create_time", DateTime, nullable=True),
    UniqueConstraint("task_no", name="f_task"),
    **_TABLE_OPTS,
)

t_task_item = Table(
    "t_task_item",
    metadata,
    Column("id", _UINT, primary_key=True, autoincrement=True),
    _str("task_no", 40, None),
    _str("item_no", 40, None),
    _str("application", 30, None),
    _str("server_name", 50, None),
    _str("node_name", 50, None),
    _str("command", 20, None),
    Column("parameters", Text, nullable=True),
    Column("start_time", DateTime, nullable=True),
    Column("end_time", DateTime, nullable=True),
    _int("status", None),
    _str("set_name", 20, None),
    Column("log", Text, nullable=True),
    UniqueConstraint("item_no", "task_no", name="f_uniq"),
    Index("f_task_no", "task_no"),
    Index("f_index", "application", "server_name", "command"),
    **_TABLE_OPTS,
)

t_web_release_conf = Table(
    "t_web_release_conf",
    metadata,
    _pk(),
    _str("server", 100, nullable=False),
    _str("path", 200, nullable=False),
    _str("server_dir", 200, nullable=False),
    Column("is_server_group", _TINYINT, nullable=False, server_default="0"),
    Column("enable_batch", _TINYINT, nullable=False, server_default="0"),
    _str("user", 200, "*", nullable=False),
    Column("posttime", DateTime, nullable=True),
    _str("lastuser", 60, None),
    UniqueConstraint("server", "is_server_group", name="server"),
    Index("web_release_conf_server_index", "server"),
    **_TABLE_OPTS,
)

# Not in db_tars.sql: written by upstream's tarsnotify (``NotifyServer/NotifyImp.cpp``).
t_server_notifys = Table(
    "t_server_notifys",
    metadata,
    _pk(),
    _str("application", 128),
    _str("server_name", 128, None),
    _str("container_name", 128),
    _str("node_name", 128, nullable=False),
    _str("set_name", 16, None),
    _str("set_area", 16, None),
    _str("set_group", 16, None),
    _str("server_id", 100, None),
    _str("thread_id", 20, None),
    _str("command", 50, None),
    Column("result", Text, nullable=True),
    Column("notifytime", DateTime, nullable=True),
    Index("index_name", "server_name"),
    Index("servernoticetime_i_1", "notifytime"),
    Index("indx_1_server_id", "server_id"),
    Index(
        "query_index",
        "application",
        "server_name",
        "node_name",
        "set_name",
        "set_area",
        "set_group",
    ),
    **_TABLE_OPTS,
)

# Tarsus's own (not upstream's): alert rules and the events they raised (tarsus.framework.alarm,
# docs/alerts.md). Upstream keeps alerting in its paid edition; no upstream tool reads these.
t_alert_rules = Table(
    "t_alert_rules",
    metadata,
    _pk(),
    _str("name", 128, None, nullable=False),
    _str("kind", 32, None, nullable=False),
    _str("application", 50),
    _str("server_name", 128),
    _str("interface_name", 128),
    _str("node_name", 50),
    _str("property_name", 128),
    _str("policy", 16),
    _str("comparison", 2, ">"),
    Column("threshold", Float, nullable=False, server_default="0"),
    _int("windows", 1, nullable=False),
    _str("webhook", 512, None, nullable=False),
    _int("enabled", 1, nullable=False),
    Column("posttime", DateTime, nullable=True),
    _str("lastuser", 30),
    UniqueConstraint("name", name="alert_rule_name"),
    **_TABLE_OPTS,
)

t_alert_events = Table(
    "t_alert_events",
    metadata,
    _pk(),
    _int("rule_id", None, nullable=False),
    _str("rule_name", 128),
    _str("target", 256),
    _str("state", 16, None, nullable=False),
    Column("value", Float, nullable=True),
    Column("threshold", Float, nullable=True),
    Column("message", Text, nullable=True),
    Column("event_time", DateTime, nullable=True),
    _str("webhook", 512),
    _str("delivery", 16, "pending"),
    _int("attempts", 0, nullable=False),
    Column("next_attempt", DateTime, nullable=True),
    _str("last_error", 255),
    Index("alert_event_rule", "rule_id", "target"),
    Index("alert_event_delivery", "delivery", "next_attempt"),
    **_TABLE_OPTS,
)

# Tarsus's own: the web console's users, grants, API tokens, sessions and audit log
# (tarsus.ops, docs/console.md). Upstream keeps users in db_user_system; no upstream tool reads
# these.
t_web_user = Table(
    "t_web_user",
    metadata,
    _pk(),
    _str("uid", 64, None, nullable=False),
    _str("password", 255, None, nullable=False),
    _int("enabled", 1, nullable=False),
    Column("create_time", DateTime, nullable=True),
    Column("password_time", DateTime, nullable=True),
    _str("lastuser", 64),
    UniqueConstraint("uid", name="web_user_uid"),
    **_TABLE_OPTS,
)

t_web_grant = Table(
    "t_web_grant",
    metadata,
    _pk(),
    _str("uid", 64, None, nullable=False),
    _str("role", 16, None, nullable=False),
    _str("flag", 256, None, nullable=False),
    Column("posttime", DateTime, nullable=True),
    _str("lastuser", 64),
    UniqueConstraint("uid", "role", "flag", name="web_grant_key"),
    **_TABLE_OPTS,
)

t_web_token = Table(
    "t_web_token",
    metadata,
    _pk(),
    _str("uid", 64, None, nullable=False),
    _str("name", 64, None, nullable=False),
    _str("token_hash", 64, None, nullable=False),
    _str("scopes", 255, None, nullable=False),
    _str("flag", 256, "*", nullable=False),
    Column("expire_time", DateTime, nullable=True),
    _int("enabled", 1, nullable=False),
    Column("last_used", DateTime, nullable=True),
    Column("create_time", DateTime, nullable=True),
    UniqueConstraint("token_hash", name="web_token_hash"),
    Index("web_token_uid", "uid"),
    **_TABLE_OPTS,
)

t_web_session = Table(
    "t_web_session",
    metadata,
    _pk(),
    _str("sid_hash", 64, None, nullable=False),
    _str("uid", 64, None, nullable=False),
    _str("csrf", 64, None, nullable=False),
    Column("create_time", DateTime, nullable=True),
    Column("expire_time", DateTime, nullable=False),
    UniqueConstraint("sid_hash", name="web_session_sid"),
    Index("web_session_uid", "uid"),
    **_TABLE_OPTS,
)

t_web_audit = Table(
    "t_web_audit",
    metadata,
    _pk(),
    Column("time", DateTime, nullable=False),
    _str("uid", 64, None, nullable=False),
    _str("via", 16),
    _str("action", 64, None, nullable=False),
    _str("target", 256),
    Column("before_value", Text, nullable=True),
    Column("after_value", Text, nullable=True),
    _str("client", 64),
    Index("web_audit_time", "time"),
    Index("web_audit_uid", "uid"),
    Index("web_audit_action", "action"),
    **_TABLE_OPTS,
)
