"""Tars configuration: the TC_Config format, profile templates with inheritance, ``${macros}``.

- ``parse(text)`` / ``parse_file(path)`` give a :class:`TCConfig`;
  ``cfg.get("/tars/application/server<app>")``, ``cfg.domains("/tars/application/server")``,
  ``cfg.set(...)``, ``cfg.tostr()``.
- ``resolve_template(name, lookup)`` merges a template with its ancestors;
  ``merge_profile(template, private_profile)`` puts a server's own profile on top.
- ``expand(text, macros)`` fills in ``${app}``, ``${locator}``... as the node does.
- ``ConfigValues(cfg).number("/tars/reap<registryTimeout>", 150.0, minimum=5.0)`` and the like
  read typed settings with defaults, floors and ranges.

Nothing here touches the network or a database: callers bring the text.
"""

from tarsus.conf.errors import (
    ConfigError,
    TemplateCycleError,
    TemplateError,
    TemplateNotFoundError,
)
from tarsus.conf.macro import NODE_MACROS, expand, macros_in, node_macros
from tarsus.conf.tcconfig import (
    ConfigDomain,
    TCConfig,
    escape,
    parse,
    parse_file,
    unescape,
)
from tarsus.conf.template import (
    TemplateLookup,
    merge_profile,
    resolve_server_profile,
    resolve_template,
    template_chain,
)
from tarsus.conf.templates import builtin_lookup, load_builtin
from tarsus.conf.values import ConfigValues

__all__ = [
    "NODE_MACROS",
    "ConfigDomain",
    "ConfigError",
    "ConfigValues",
    "TCConfig",
    "TemplateCycleError",
    "TemplateError",
    "TemplateLookup",
    "TemplateNotFoundError",
    "builtin_lookup",
    "escape",
    "expand",
    "load_builtin",
    "macros_in",
    "merge_profile",
    "node_macros",
    "parse",
    "parse_file",
    "resolve_server_profile",
    "resolve_template",
    "template_chain",
    "unescape",
]
