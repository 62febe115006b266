"""Profile templates shipped with Tarsus, installed into ``t_profile_template`` at setup.

``tars.default`` is the root of business templates, with upstream's keys and default values;
``tars.tarspython.default`` inherits it for Python servers. The parent of each is kept here, as
upstream keeps it in the install script rather than in the file; ``tars.default`` is its own
parent, exactly as upstream installs it.
"""

from __future__ import annotations

from importlib import resources
from types import MappingProxyType

__all__ = ["BUILTIN_PARENTS", "builtin_lookup", "builtin_names", "load_builtin"]

#: Template name -> parent template name.
BUILTIN_PARENTS = MappingProxyType(
    {
        "tars.default": "tars.default",
        "tars.tarspython.default": "tars.default",
    }
)


def builtin_names() -> list[str]:
    """Names of the shipped templates."""
    return sorted(BUILTIN_PARENTS)


def load_builtin(name: str) -> str:
    """The text of the shipped template ``name``; :class:`KeyError` if there is none."""
    if name not in BUILTIN_PARENTS:  # also keeps a name from reaching outside this folder
        raise KeyError(f"no built-in template {name!r}; there are {builtin_names()}")
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


def builtin_lookup(name: str) -> tuple[str, str | None] | None:
    """A ``lookup`` for :func:`tarsus.conf.resolve_template` over the shipped templates."""
    if name not in BUILTIN_PARENTS:
        return None
    return load_builtin(name), BUILTIN_PARENTS[name]
