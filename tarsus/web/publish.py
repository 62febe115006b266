"""The framework services' clients of the HTTP app, and the script API's form.

:class:`Framework` holds the communicator and the proxies the service layer
(:class:`tarsus.ops.platform.Platform`) calls: the admin registry (``AdminReg`` and our
``AdminExt`` on the same object), the package store (``tars.tarspatch.PatchObj``) and the
config center's ``ConfigExt`` (``tars.tarsconfig.ConfigExtObj``), each found through the
registry unless the settings name an address.

``POST /api/upload_and_publish`` (upstream TarsWeb's script API, docs/web.md) reads its form
with :func:`check_fields`; what it does is :func:`tarsus.ops.release.upload_and_publish`.
"""

from __future__ import annotations

from tarsus.codec.constants import ADMIN_REG_OBJ, CONFIG_EXT_OBJ, PATCH_OBJ
from tarsus.ops.errors import Invalid
from tarsus.ops.release import MAX_COMMENT, check_names
from tarsus.protocol.gen import AdminReg, Patch, TarsusAdmin, TarsusConfig
from tarsus.rpc.communicator import Communicator
from tarsus.web.settings import WebSettings

__all__ = ["Framework", "check_fields"]


class Framework:
    """The communicator and proxies; :meth:`close` ends the communicator."""

    def __init__(self, settings: WebSettings) -> None:
        self.comm = Communicator(
            settings.locator,
            cache_dir=None,
            timeout_ms=settings.rpc_timeout_ms,
            security=settings.security,
        )
        admin = settings.admin or ADMIN_REG_OBJ
        self.admin = self.comm.string_to_proxy(AdminReg.AdminRegProxy, admin)
        self.ext = self.comm.string_to_proxy(TarsusAdmin.AdminExtProxy, admin)
        self.patch = self.comm.string_to_proxy(Patch.PatchProxy, settings.patch or PATCH_OBJ)
        #: None when neither an address nor a locator says where it is
        self.config: TarsusConfig.ConfigExtProxy | None = None
        if settings.config or settings.locator:
            self.config = self.comm.string_to_proxy(
                TarsusConfig.ConfigExtProxy, settings.config or CONFIG_EXT_OBJ
            )

    async def close(self) -> None:
        await self.comm.close()


def check_fields(fields: dict[str, str]) -> tuple[str, str, str, bool]:
    """``(application, server, comment, restart)`` from the script API's form, or
    :class:`Invalid` naming the field."""
    missing = [k for k in ("application", "module_name") if not fields.get(k, "").strip()]
    if missing:
        raise Invalid(f"missing field(s): {', '.join(missing)}")
    application, server = check_names(fields["application"].strip(), fields["module_name"].strip())
    comment = fields.get("comment", "")
    if len(comment) > MAX_COMMENT:
        raise Invalid(f"comment is {len(comment)} characters; at most {MAX_COMMENT}")
    restart = fields.get("restart", "").strip()
    if restart not in ("", "0", "1"):
        raise Invalid(f"restart must be 1 or 0, not {restart[:20]!r}")
    return application, server, comment, restart == "1"
