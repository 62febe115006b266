"""The service layer: what an operator can do, once, for every face of the platform.

The console's pages, its REST API, the script API and the ``tarsus`` CLI call these plain async
operations; none of them implements an operation itself. Each operation takes the
:class:`~tarsus.ops.platform.Platform` (the store and the framework services' clients) and an
:class:`~tarsus.ops.access.Actor` (who is calling, with their grants), checks the actor's
permission itself, and records what it changed in the audit log. Lists are paged and searched
on the server (:mod:`tarsus.ops.paging`). Errors are :mod:`tarsus.ops.errors`, each with the
HTTP status a web face answers.

One module per domain: :mod:`~tarsus.ops.services` (service tree, instances),
:mod:`~tarsus.ops.users` (users, roles, tokens), :mod:`~tarsus.ops.sessions` (login),
:mod:`~tarsus.ops.audit`. docs/console.md.
"""
