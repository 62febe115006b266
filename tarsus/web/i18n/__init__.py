"""All the console's words, one catalog per language: ``i18n/<lang>/<domain>.toml``.

A key is ``<domain>.<name>`` (``users.title`` is ``title`` in ``en/users.toml``); values may
hold ``{placeholders}`` filled by :meth:`Catalog.text`. A missing key is an error, not a blank
(the page tests render every page). To translate: copy ``en/`` to ``zh/`` and translate the
values; :func:`catalog` picks the language from the ``lang`` cookie or ``Accept-Language``.
"""

from __future__ import annotations

import functools
import tomllib
from importlib import resources

__all__ = ["DEFAULT_LANG", "Catalog", "catalog", "languages"]

DEFAULT_LANG = "en"


class Catalog:
    def __init__(self, lang: str, texts: dict[str, str]) -> None:
        self.lang = lang
        self._texts = texts

    def text(self, key: str, /, **values: object) -> str:
        try:
            value = self._texts[key]
        except KeyError:
            raise KeyError(
                f"no text {key!r} in the {self.lang} catalog (tarsus/web/i18n)"
            ) from None
        return value.format(**values) if values else value

    def __contains__(self, key: str) -> bool:
        return key in self._texts


@functools.cache
def languages() -> tuple[str, ...]:
    root = resources.files(__name__)
    return tuple(
        sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("_"))
    )


@functools.cache
def _load(lang: str) -> Catalog:
    texts: dict[str, str] = {}
    for item in sorted(resources.files(__name__).joinpath(lang).iterdir(), key=lambda p: p.name):
        if not item.name.endswith(".toml"):
            continue
        domain = item.name[: -len(".toml")]
        for name, value in tomllib.loads(item.read_text(encoding="utf-8")).items():
            texts[f"{domain}.{name}"] = str(value)
    return Catalog(lang, texts)


def catalog(accept_language: str = "", cookie: str = "") -> Catalog:
    """The catalog for the request: the ``lang`` cookie, else the first language of
    ``Accept-Language`` there is a catalog for, else English."""
    available = languages()
    wanted = [cookie] if cookie else []
    wanted += [part.split(";")[0].strip().lower()[:2] for part in accept_language.split(",")[:8]]
    for lang in wanted:
        if lang in available:
            return _load(lang)
    return _load(DEFAULT_LANG)
