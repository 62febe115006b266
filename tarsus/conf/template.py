"""Profile templates (``t_profile_template``) and their single inheritance.

A server's config starts from a named template. Each template names a parent; resolving it
merges the chain from the root down, the child winning every key it sets and the parent filling
in what the child leaves out, as the registry's ``getProfileTemplate`` does. The server's own
private profile is then merged on top, winning over the whole chain. ``${macros}`` are left
alone here: the node expands them when it writes the file (:mod:`tarsus.conf.macro`).

These are pure functions over text; where the templates live (a database row, a package file)
is the caller's business, given as a ``lookup`` function.
"""

from __future__ import annotations

from collections.abc import Callable

from tarsus.conf.errors import (
    ConfigError,
    TemplateCycleError,
    TemplateError,
    TemplateNotFoundError,
)
from tarsus.conf.tcconfig import TCConfig, parse

__all__ = [
    "MAX_TEMPLATE_CHAIN",
    "TemplateLookup",
    "merge_profile",
    "resolve_server_profile",
    "resolve_template",
    "template_chain",
]

#: ``lookup(name)`` gives ``(profile text, parent name or None/"")``, or None if no such template.
TemplateLookup = Callable[[str], "tuple[str, str | None] | None"]

#: Longest inheritance chain followed. Installed chains are at most three deep; the cap only
#: stops a lookup that keeps inventing new parent names.
MAX_TEMPLATE_CHAIN = 64


def template_chain(name: str, lookup: TemplateLookup) -> list[tuple[str, str]]:
    """The ``(name, profile text)`` of ``name`` and each ancestor, child first.

    A template that names itself as parent ends the chain: upstream installs ``tars.default``
    that way. Raises :class:`TemplateNotFoundError` for a missing template or parent, and
    :class:`TemplateCycleError` when a longer loop comes back to a template already seen.
    """
    chain: list[tuple[str, str]] = []
    current = name
    while True:
        found = lookup(current)
        if found is None:
            if not chain:
                raise TemplateNotFoundError(f"template {current!r} does not exist")
            raise TemplateNotFoundError(
                f"template {chain[-1][0]!r} names parent {current!r}, which does not exist "
                f"(chain: {_arrow([n for n, _ in chain] + [current])})"
            )
        text, parent = found
        chain.append((current, text))
        if not parent or parent == current:
            return chain
        seen = [n for n, _ in chain]
        if parent in seen:
            raise TemplateCycleError(f"templates inherit in a loop: {_arrow([*seen, parent])}")
        if len(chain) >= MAX_TEMPLATE_CHAIN:
            raise TemplateError(
                f"template {name!r} has more than {MAX_TEMPLATE_CHAIN} ancestors: {_arrow(seen)}"
            )
        current = parent


def resolve_template(name: str, lookup: TemplateLookup) -> TCConfig:
    """The template ``name`` merged with all its ancestors.

    Merge rule (upstream ``confMyself.joinConfig(confParent, false)``): domains are united; on a
    key set by both, the child's value stays. Order is the order upstream produces: the
    parent's keys first, then the child's, a key the child overrides moving to the child's place.
    A template's parse error is raised as :class:`ConfigError` naming the template and line.
    """
    chain = template_chain(name, lookup)
    resolved = TCConfig()
    for template_name, text in reversed(chain):
        resolved.join(_parse_template(template_name, text), overwrite=True)
    return resolved


def merge_profile(template: TCConfig, profile: str | TCConfig) -> TCConfig:
    """A server's effective profile: its resolved template with its private profile merged on
    top, the private values winning (upstream ``tParent.joinConfig(tProfile, true)``).

    ``template`` is not changed.
    """
    private = parse(profile, source="server profile") if isinstance(profile, str) else profile
    merged = template.copy()
    merged.join(private, overwrite=True)
    return merged


def resolve_server_profile(template_name: str, profile: str, lookup: TemplateLookup) -> TCConfig:
    """:func:`resolve_template` then :func:`merge_profile`, as the registry's ``getServers``
    builds each ``ServerDescriptor.profile``."""
    return merge_profile(resolve_template(template_name, lookup), profile)


def _parse_template(name: str, text: str) -> TCConfig:
    try:
        return parse(text, source=f"template {name!r}")
    except ConfigError as err:
        raise TemplateError(err.message, err.line, err.source) from None


def _arrow(names: list[str]) -> str:
    return " -> ".join(names)
