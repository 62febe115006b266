"""Initial schema: every ``db_tars`` table as upstream's ``db_tars.sql`` declares it, plus
``t_server_notifys`` (see :mod:`tarsus.store.schema` for where we differ from upstream).

Revision ID: 0001
Revises: (none)

Frozen: to change the schema, add a migration; do not edit this one.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from tarsus.store.ddl import AUTO_INCREMENT, ON_UPDATE_NOW

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

_OPTS: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}
_UINT = sa.Integer().with_variant(mysql.INTEGER(unsigned=True), "mysql", "mariadb")
_TINYINT = sa.Integer().with_variant(mysql.TINYINT(), "mysql", "mariadb")
_LONGTEXT = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def _now(name: str) -> sa.Column[Any]:
    """DATETIME DEFAULT CURRENT_TIMESTAMP [ON UPDATE CURRENT_TIMESTAMP on MySQL]."""
    return sa.Column(
        name,
        sa.DateTime(),
        server_default=sa.text("CURRENT_TIMESTAMP"),
        nullable=True,
        info={ON_UPDATE_NOW: True},
    )


def upgrade() -> None:
    op.create_table(
        "t_adapter_conf",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("application", sa.String(length=50), server_default="", nullable=True),
        sa.Column("server_name", sa.String(length=128), server_default="", nullable=True),
        sa.Column("node_name", sa.String(length=50), server_default="", nullable=True),
        sa.Column("adapter_name", sa.String(length=100), server_default="", nullable=True),
        _now("registry_timestamp"),
        sa.Column("thread_num", sa.Integer(), server_default="1", nullable=True),
        sa.Column("endpoint", sa.String(length=128), server_default="", nullable=True),
        sa.Column("max_connections", sa.Integer(), server_default="1000", nullable=True),
        sa.Column("allow_ip", sa.String(length=255), server_default="", nullable=False),
        sa.Column("servant", sa.String(length=128), server_default="", nullable=True),
        sa.Column("queuecap", sa.Integer(), nullable=True),
        sa.Column("queuetimeout", sa.Integer(), nullable=True),
        sa.Column("posttime", sa.DateTime(), nullable=True),
        sa.Column("lastuser", sa.String(length=30), nullable=True),
        sa.Column("protocol", sa.String(length=64), server_default="tars", nullable=True),
        sa.Column("handlegroup", sa.String(length=64), server_default="", nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "application", "server_name", "node_name", "adapter_name", name="application"
        ),
        **_OPTS,
    )
    op.create_index("adapter_conf_endpoint_index", "t_adapter_conf", ["endpoint"], unique=False)
    op.create_index("index_regtime_1", "t_adapter_conf", ["registry_timestamp"], unique=False)
    op.create_table(
        "t_base_image",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("image", sa.String(length=255), server_default="", nullable=False),
        sa.Column("registryId", sa.Integer(), server_default="0", nullable=False),
        sa.Column("remark", sa.String(length=255), server_default="", nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("create_time", sa.DateTime(), nullable=True),
        sa.Column("update_time", sa.DateTime(), nullable=True),
        sa.Column("sha", sa.String(length=255), server_default="", nullable=True),
        sa.PrimaryKeyConstraint("id"),
        **_OPTS,
    )
    op.create_table(
        "t_config_files",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("server_name", sa.String(length=128), server_default="", nullable=True),
        sa.Column("set_name", sa.String(length=16), server_default="", nullable=False),
        sa.Column("set_area", sa.String(length=16), server_default="", nullable=False),
        sa.Column("set_group", sa.String(length=16), server_default="", nullable=False),
        sa.Column("host", sa.String(length=50), server_default="", nullable=False),
        sa.Column("filename", sa.String(length=128), nullable=True),
        sa.Column("config", _LONGTEXT, nullable=True),
        sa.Column("posttime", sa.DateTime(), nullable=True),
        sa.Column("lastuser", sa.String(length=50), nullable=True),
        sa.Column("level", sa.Integer(), server_default="2", nullable=True),
        sa.Column("config_flag", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "server_name",
            "filename",
            "host",
            "level",
            "set_name",
            "set_area",
            "set_group",
            name="application",
        ),
        **_OPTS,
    )
    op.create_table(
        "t_config_history_files",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("configid", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=128), server_default="", nullable=True),
        sa.Column("reason_select", sa.String(length=20), server_default="", nullable=False),
        sa.Column("content", _LONGTEXT, nullable=True),
        sa.Column("posttime", sa.DateTime(), nullable=True),
        sa.Column("lastuser", sa.String(length=50), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        **_OPTS,
    )
    op.create_table(
        "t_config_references",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("config_id", sa.Integer(), nullable=True),
        sa.Column("reference_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("config_id", "reference_id", name="config_id"),
        **_OPTS,
    )
    op.create_table(
        "t_docker_registry",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("registry", sa.String(length=255), server_default="", nullable=False),
        sa.Column("username", sa.String(length=64), server_default="", nullable=False),
        sa.Column("password", sa.String(length=128), server_default="", nullable=False),
        sa.Column("remark", sa.String(length=255), server_default="", nullable=False),
        sa.Column("create_time", sa.DateTime(), nullable=True),
        sa.Column("update_time", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        **_OPTS,
    )
    op.create_table(
        "t_framework_key",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=16), server_default="key", nullable=False),
        sa.Column("cuid", sa.String(length=128), server_default="", nullable=False),
        sa.Column("pri_key", sa.Text(), nullable=True),
        sa.Column("autologin", sa.Integer(), server_default="1", nullable=True),
        sa.Column("update_time", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        **_OPTS,
    )
    op.create_index("idx_key", "t_framework_key", ["key"], unique=False)
    op.create_table(
        "t_group_priority",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=128), server_default="", nullable=True),
        sa.Column("group_list", sa.Text(), nullable=True),
        sa.Column("list_order", sa.Integer(), server_default="0", nullable=True),
        sa.Column("station", sa.String(length=128), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("id"),
        **_OPTS,
    )
    op.create_table(
        "t_machine_tars_info",
        # AUTO_INCREMENT on MySQL although not the primary key, as upstream.
        sa.Column(
            "id", sa.Integer(), autoincrement=False, nullable=True, info={AUTO_INCREMENT: True}
        ),
        sa.Column("application", sa.String(length=100), server_default="", nullable=False),
        sa.Column("server_name", sa.String(length=100), server_default="", nullable=False),
        sa.Column("app_server_name", sa.String(length=50), server_default="", nullable=False),
        sa.Column("node_name", sa.String(length=50), server_default="", nullable=False),
        sa.Column("location", sa.String(length=255), server_default="", nullable=False),
        sa.Column("machine_type", sa.String(length=50), server_default="", nullable=False),
        sa.Column("update_time", sa.DateTime(), nullable=True),
        sa.Column("update_person", sa.String(length=64), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("application", "server_name", "node_name"),
        sa.UniqueConstraint("id", name="id"),
        **_OPTS,
    )
    op.create_index(
        "tmachine_i_2", "t_machine_tars_info", ["node_name", "server_name"], unique=False
    )
    op.create_table(
        "t_node_info",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("node_name", sa.String(length=128), server_default="", nullable=True),
        sa.Column("node_obj", sa.String(length=128), server_default="", nullable=True),
        sa.Column("endpoint_ip", sa.String(length=50), server_default="", nullable=True),
        sa.Column("endpoint_port", sa.Integer(), server_default="0", nullable=True),
        sa.Column("data_dir", sa.String(length=128), server_default="", nullable=True),
        sa.Column("load_avg1", sa.Float(), server_default="0", nullable=True),
        sa.Column("load_avg5", sa.Float(), server_default="0", nullable=True),
        sa.Column("load_avg15", sa.Float(), server_default="0", nullable=True),
        sa.Column("last_reg_time", sa.DateTime(), nullable=True),
        sa.Column("last_heartbeat", sa.DateTime(), nullable=True),
        sa.Column("setting_state", sa.String(length=16), server_default="inactive", nullable=True),
        sa.Column("present_state", sa.String(length=16), server_default="inactive", nullable=True),
        sa.Column("tars_version", sa.String(length=128), server_default="", nullable=False),
        sa.Column("template_name", sa.String(length=128), server_default="", nullable=False),
        _now("modify_time"),
        sa.Column("group_id", sa.Integer(), server_default="-1", nullable=True),
        sa.Column("label", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("node_name", name="node_name"),
        **_OPTS,
    )
    op.create_index("indx_node_info_1", "t_node_info", ["last_heartbeat"], unique=False)
    op.create_table(
        "t_profile_template",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("template_name", sa.String(length=128), server_default="", nullable=True),
        sa.Column("parents_name", sa.String(length=128), server_default="", nullable=True),
        sa.Column("profile", sa.Text(), nullable=False),
        sa.Column("posttime", sa.DateTime(), nullable=True),
        sa.Column("lastuser", sa.String(length=30), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("template_name", name="template_name"),
        **_OPTS,
    )
    op.create_table(
        "t_registry_info",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("locator_id", sa.String(length=128), server_default="", nullable=False),
        sa.Column("servant", sa.String(length=128), server_default="", nullable=False),
        sa.Column("endpoint", sa.String(length=128), server_default="", nullable=False),
        sa.Column("last_heartbeat", sa.DateTime(), nullable=True),
        sa.Column("present_state", sa.String(length=16), server_default="inactive", nullable=True),
        sa.Column("tars_version", sa.String(length=128), server_default="", nullable=False),
        _now("modify_time"),
        sa.Column("enable_group", sa.CHAR(length=1), server_default="N", nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("locator_id", "servant", name="locator_id"),
        **_OPTS,
    )
    op.create_table(
        "t_server_conf",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("application", sa.String(length=128), server_default="", nullable=True),
        sa.Column("server_name", sa.String(length=128), server_default="", nullable=True),
        sa.Column("node_group", sa.String(length=50), server_default="", nullable=False),
        sa.Column("node_name", sa.String(length=50), server_default="", nullable=False),
        _now("registry_timestamp"),
        sa.Column("base_path", sa.String(length=128), server_default="", nullable=True),
        sa.Column("exe_path", sa.String(length=128), server_default="", nullable=False),
        sa.Column("template_name", sa.String(length=128), server_default="", nullable=False),
        sa.Column("bak_flag", sa.Integer(), server_default="0", nullable=False),
        sa.Column("setting_state", sa.String(length=16), server_default="inactive", nullable=False),
        sa.Column("present_state", sa.String(length=16), server_default="inactive", nullable=False),
        sa.Column("process_id", sa.Integer(), server_default="0", nullable=False),
        sa.Column("patch_version", sa.String(length=128), server_default="", nullable=False),
        sa.Column("patch_time", sa.DateTime(), nullable=True),
        sa.Column("patch_user", sa.String(length=128), server_default="", nullable=False),
        sa.Column("tars_version", sa.String(length=128), server_default="", nullable=False),
        sa.Column("posttime", sa.DateTime(), nullable=True),
        sa.Column("lastuser", sa.String(length=30), nullable=True),
        sa.Column("server_type", sa.String(length=32), server_default="tars_cpp", nullable=False),
        sa.Column("start_script_path", sa.String(length=128), nullable=True),
        sa.Column("stop_script_path", sa.String(length=128), nullable=True),
        sa.Column("monitor_script_path", sa.String(length=128), nullable=True),
        sa.Column("enable_group", sa.CHAR(length=1), server_default="N", nullable=True),
        sa.Column("enable_set", sa.CHAR(length=1), server_default="N", nullable=False),
        sa.Column("set_name", sa.String(length=16), nullable=True),
        sa.Column("set_area", sa.String(length=16), nullable=True),
        sa.Column("set_group", sa.String(length=64), nullable=True),
        sa.Column("ip_group_name", sa.String(length=64), nullable=True),
        sa.Column("profile", sa.Text(), nullable=True),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("config_center_port", sa.Integer(), server_default="0", nullable=False),
        sa.Column("async_thread_num", sa.Integer(), server_default="3", nullable=True),
        sa.Column("server_important_type", sa.String(length=1), server_default="0", nullable=True),
        sa.Column("grid_flag", sa.String(length=16), server_default="NORMAL", nullable=False),
        sa.Column("flow_state", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("run_type", sa.String(length=32), server_default="", nullable=False),
        sa.Column("base_image_id", sa.Integer(), server_default="0", nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("application", "server_name", "node_name", name="application"),
        **_OPTS,
    )
    op.create_index(
        "index_i_3",
        "t_server_conf",
        ["setting_state", "server_type", "application", "server_name", "node_name"],
        unique=False,
    )
    op.create_index("index_regtime", "t_server_conf", ["registry_timestamp"], unique=False)
    op.create_index("node_name", "t_server_conf", ["node_name"], unique=False)
    op.create_table(
        "t_server_group_relation",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("application", sa.String(length=90), server_default="", nullable=False),
        sa.Column("server_group", sa.String(length=50), server_default="", nullable=True),
        sa.Column("server_name", sa.String(length=50), server_default="", nullable=True),
        sa.Column("create_time", sa.DateTime(), nullable=True),
        sa.Column("creator", sa.String(length=30), server_default="", nullable=True),
        sa.PrimaryKeyConstraint("id"),
        **_OPTS,
    )
    op.create_index(
        "f_unique",
        "t_server_group_relation",
        ["application", "server_group", "server_name"],
        unique=False,
    )
    op.create_table(
        "t_server_group_rule",
        sa.Column("group_id", _UINT, autoincrement=True, nullable=False),
        sa.Column("ip_order", sa.String(length=16), server_default="denny_allow", nullable=False),
        sa.Column("allow_ip_rule", sa.Text(), nullable=True),
        sa.Column("denny_ip_rule", sa.Text(), nullable=True),
        sa.Column("lastuser", sa.String(length=50), nullable=True),
        _now("modify_time"),
        sa.Column("group_name", sa.String(length=128), server_default="", nullable=True),
        sa.Column("group_name_cn", sa.String(length=128), server_default="", nullable=True),
        sa.PrimaryKeyConstraint("group_id"),
        sa.UniqueConstraint("group_name", name="group_name_index"),
        **_OPTS,
    )
    op.create_table(
        "t_server_notifys",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("application", sa.String(length=128), server_default="", nullable=True),
        sa.Column("server_name", sa.String(length=128), nullable=True),
        sa.Column("container_name", sa.String(length=128), server_default="", nullable=True),
        sa.Column("node_name", sa.String(length=128), server_default="", nullable=False),
        sa.Column("set_name", sa.String(length=16), nullable=True),
        sa.Column("set_area", sa.String(length=16), nullable=True),
        sa.Column("set_group", sa.String(length=16), nullable=True),
        sa.Column("server_id", sa.String(length=100), nullable=True),
        sa.Column("thread_id", sa.String(length=20), nullable=True),
        sa.Column("command", sa.String(length=50), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("notifytime", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        **_OPTS,
    )
    op.create_index("index_name", "t_server_notifys", ["server_name"], unique=False)
    op.create_index("indx_1_server_id", "t_server_notifys", ["server_id"], unique=False)
    op.create_index(
        "query_index",
        "t_server_notifys",
        ["application", "server_name", "node_name", "set_name", "set_area", "set_group"],
        unique=False,
    )
    op.create_index("servernoticetime_i_1", "t_server_notifys", ["notifytime"], unique=False)
    op.create_table(
        "t_server_patchs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("server", sa.String(length=50), nullable=True),
        sa.Column("version", sa.String(length=1000), server_default="", nullable=True),
        sa.Column("tgz", sa.Text(), nullable=True),
        sa.Column("update_text", sa.String(length=255), nullable=True),
        sa.Column("reason_select", sa.String(length=255), nullable=True),
        sa.Column("is_server_group", _TINYINT, server_default="0", nullable=False),
        sa.Column("publish", _TINYINT, nullable=True),
        sa.Column("publish_time", sa.DateTime(), nullable=True),
        sa.Column("publish_user", sa.String(length=30), nullable=True),
        sa.Column("upload_time", sa.DateTime(), nullable=True),
        sa.Column("upload_user", sa.String(length=30), nullable=True),
        sa.Column("posttime", sa.DateTime(), nullable=True),
        sa.Column("lastuser", sa.String(length=30), nullable=True),
        sa.Column("is_release_version", sa.String(length=8), server_default="true", nullable=True),
        sa.Column("package_type", _TINYINT, server_default="0", nullable=True),
        sa.Column("group_id", sa.String(length=64), server_default="", nullable=False),
        sa.Column("default_version", _TINYINT, server_default="0", nullable=True),
        sa.Column("md5", sa.String(length=40), nullable=True),
        sa.Column("svn_version", sa.String(length=50), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        **_OPTS,
    )
    op.create_index("index_i_2", "t_server_patchs", ["tgz"], unique=False, mysql_length={"tgz": 50})
    op.create_index("server_patchs_server_index", "t_server_patchs", ["server"], unique=False)
    op.create_table(
        "t_task",
        sa.Column("id", _UINT, autoincrement=True, nullable=False),
        sa.Column("task_no", sa.String(length=40), nullable=True),
        sa.Column("serial", _TINYINT, nullable=True),
        sa.Column("user_name", sa.String(length=20), nullable=True),
        sa.Column("create_time", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("task_no", name="f_task"),
        **_OPTS,
    )
    op.create_table(
        "t_task_item",
        sa.Column("id", _UINT, autoincrement=True, nullable=False),
        sa.Column("task_no", sa.String(length=40), nullable=True),
        sa.Column("item_no", sa.String(length=40), nullable=True),
        sa.Column("application", sa.String(length=30), nullable=True),
        sa.Column("server_name", sa.String(length=50), nullable=True),
        sa.Column("node_name", sa.String(length=50), nullable=True),
        sa.Column("command", sa.String(length=20), nullable=True),
        sa.Column("parameters", sa.Text(), nullable=True),
        sa.Column("start_time", sa.DateTime(), nullable=True),
        sa.Column("end_time", sa.DateTime(), nullable=True),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("set_name", sa.String(length=20), nullable=True),
        sa.Column("log", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("item_no", "task_no", name="f_uniq"),
        **_OPTS,
    )
    op.create_index(
        "f_index", "t_task_item", ["application", "server_name", "command"], unique=False
    )
    op.create_index("f_task_no", "t_task_item", ["task_no"], unique=False)
    op.create_table(
        "t_web_release_conf",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("server", sa.String(length=100), server_default="", nullable=False),
        sa.Column("path", sa.String(length=200), server_default="", nullable=False),
        sa.Column("server_dir", sa.String(length=200), server_default="", nullable=False),
        sa.Column("is_server_group", _TINYINT, server_default="0", nullable=False),
        sa.Column("enable_batch", _TINYINT, server_default="0", nullable=False),
        sa.Column("user", sa.String(length=200), server_default="*", nullable=False),
        sa.Column("posttime", sa.DateTime(), nullable=True),
        sa.Column("lastuser", sa.String(length=60), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("server", "is_server_group", name="server"),
        **_OPTS,
    )
    op.create_index("web_release_conf_server_index", "t_web_release_conf", ["server"], unique=False)


def downgrade() -> None:
    op.drop_table("t_web_release_conf")
    op.drop_table("t_task_item")
    op.drop_table("t_task")
    op.drop_table("t_server_patchs")
    op.drop_table("t_server_notifys")
    op.drop_table("t_server_group_rule")
    op.drop_table("t_server_group_relation")
    op.drop_table("t_server_conf")
    op.drop_table("t_registry_info")
    op.drop_table("t_profile_template")
    op.drop_table("t_node_info")
    op.drop_table("t_machine_tars_info")
    op.drop_table("t_group_priority")
    op.drop_table("t_framework_key")
    op.drop_table("t_docker_registry")
    op.drop_table("t_config_references")
    op.drop_table("t_config_history_files")
    op.drop_table("t_config_files")
    op.drop_table("t_base_image")
    op.drop_table("t_adapter_conf")
