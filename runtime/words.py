"""The platform's own words (the pages' menus, buttons, headings and messages; the emails' frame) in the reader's language.

The packs translate what they define (fields, forms, choices, steps: `engine.labels`); the words the platform itself
puts on a page or in an email are translated here, from gettext catalogs that ship with the platform: `locales/<language>/*.po`,
read with Babel when first asked for (no compile step; every file of a language is one catalog, so each area of the
pages may keep its own). A word a catalog does not have, or a language no catalog covers, reads as written (English).

Templates use Jinja's i18n extension (`{% trans %}…{% endtrans %}`, `_("…")`, newstyle: `_("%(n)s open", n=3)`);
Python code uses `text(locale, "…")` (an email: in its reader's language). A page's language is the one
`admin.web.language.page_locale` picked, so a German reader of a pack translated into German reads German labels and
German words; the console (`/admin`) shows the definitions as written and its words in English.
"""
from __future__ import annotations

import contextvars
import gettext as _gettext
from functools import cache
from pathlib import Path
from typing import Any

from babel.messages.pofile import read_po
from jinja2 import Environment

LOCALES = Path(__file__).resolve().parent / "locales"
DEFAULT = "en"

# the language of the page being rendered: set by `pages.render` around the (synchronous) template rendering
_reading: contextvars.ContextVar[str] = contextvars.ContextVar("tailor_page_language", default=DEFAULT)


class Catalog(_gettext.NullTranslations):
    """A language's messages from its `.po` files (fuzzy and empty translations left out: they read as written)."""

    def __init__(self, messages: dict[str, str], plurals: dict[str, tuple[str, ...]], plural: Any):
        super().__init__()
        self._messages, self._plurals, self._plural = messages, plurals, plural

    def gettext(self, message: str) -> str:
        return self._messages.get(message) or message

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        forms = self._plurals.get(singular)
        if forms:
            index = self._plural(n)
            if 0 <= index < len(forms) and forms[index]:
                return forms[index]
        return singular if n == 1 else plural


@cache
def catalog(locale: str) -> _gettext.NullTranslations:
    """The words of `locale` (the language part of it: `de-AT` reads `de`), or none (English) if none ship."""
    folder = LOCALES / locale.split("-")[0].split("_")[0].lower() if locale else None
    if locale == DEFAULT or folder is None or not folder.is_dir():
        return _gettext.NullTranslations()
    messages: dict[str, str] = {}
    plurals: dict[str, tuple[str, ...]] = {}
    plural = None
    for path in sorted(folder.glob("*.po")):
        with path.open("rb") as f:
            po = read_po(f, locale=folder.name)
        plural = plural or (po.plural_expr and _gettext.c2py(po.plural_expr))
        for m in po:
            if not m.id or m.fuzzy:
                continue
            if isinstance(m.id, tuple):
                forms = tuple(m.string) if isinstance(m.string, (tuple, list)) else (m.string,)
                if any(forms):
                    plurals[m.id[0]] = forms
            elif m.string:
                messages[m.id] = m.string
    return Catalog(messages, plurals, plural or (lambda n: int(n != 1)))


def text(locale: str | None, message: str, **values: Any) -> str:
    """`message` in `locale`, with `%(name)s` placeholders filled from `values`."""
    out = catalog(locale or DEFAULT).gettext(message)
    return out % values if values else out


def plural(locale: str | None, singular: str, many: str, n: int, **values: Any) -> str:
    """The form of `singular`/`many` for the count `n` in `locale` (`%(num)s` is `n`)."""
    out = catalog(locale or DEFAULT).ngettext(singular, many, n)
    return out % {"num": n, **values}


# languages that write a noun with a capital inside a sentence: there a label reads as defined ("Firma bearbeiten")
CAPITAL_NOUNS = {"de"}


def noun(locale: str | None, label: str) -> str:
    """A label (an entity's name) inside a sentence of `locale`: lower case ("Edit this company"), except in languages
    that capitalise nouns."""
    return label if (locale or DEFAULT).split("-")[0].split("_")[0].lower() in CAPITAL_NOUNS else label.lower()


class reading:
    """`with reading(locale):` — the templates rendered inside read `locale`'s words."""

    def __init__(self, locale: str | None):
        self.locale = locale or DEFAULT

    def __enter__(self) -> None:
        self._token = _reading.set(self.locale)

    def __exit__(self, *exc: object) -> None:
        _reading.reset(self._token)


def install(env: Environment) -> None:
    """Give `env` the i18n extension, its words looked up in the language of the page being rendered."""
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=lambda message: catalog(_reading.get()).gettext(message),
        ngettext=lambda singular, many, n: catalog(_reading.get()).ngettext(singular, many, n),
        newstyle=True)
    env.globals["noun"] = lambda label: noun(_reading.get(), label)
    # a message a route chose (an error's text, a refusal): looked up as it is, nothing filled in (it may hold a "%")
    env.globals["said"] = lambda message: catalog(_reading.get()).gettext(message) if message else message
