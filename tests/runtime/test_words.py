"""The platform's own words: every shipped catalog reads, keeps the placeholders of what it translates, and gives one
translation per message; a page's words follow its reader's language and fall back to English."""
from __future__ import annotations

import re

import pytest
from babel.messages.pofile import read_po
from jinja2 import Environment

from runtime import words

PLACEHOLDER = re.compile(r"%\((\w+)\)s")
CATALOGS = sorted(words.LOCALES.glob("*/*.po"))


def test_catalogs_ship():
    assert any(p.parent.name == "de" for p in CATALOGS)


@pytest.mark.parametrize("path", CATALOGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_catalog_keeps_placeholders(path):
    with path.open("rb") as f:
        po = read_po(f, locale=path.parent.name)
    bad = []
    for m in po:
        if not m.id or not m.string:
            continue
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        wanted = {n for i in ids for n in PLACEHOLDER.findall(i)}
        for s in strings:
            if s and set(PLACEHOLDER.findall(s)) - wanted:
                bad.append(f"{path.name}:{m.lineno}: {s!r} names a placeholder {m.id!r} does not fill")
            if s and s.count("%") - 2 * s.count("%%") != len(PLACEHOLDER.findall(s)):
                bad.append(f"{path.name}:{m.lineno}: {s!r} has a stray %")
    assert not bad, "\n".join(bad)


def test_one_translation_per_message_across_a_languages_files():
    seen: dict[tuple[str, str], tuple[str, str]] = {}
    clashes = []
    for path in CATALOGS:
        with path.open("rb") as f:
            po = read_po(f, locale=path.parent.name)
        for m in po:
            if m.id and m.string and isinstance(m.id, str):
                key = (path.parent.name, m.id)
                if key in seen and seen[key][1] != m.string:
                    clashes.append(f"{m.id!r}: {seen[key][0]} says {seen[key][1]!r}, {path.name}:{m.lineno} says {m.string!r}")
                seen.setdefault(key, (f"{path.name}:{m.lineno}", m.string))
    assert not clashes, "\n".join(clashes)


def test_words_in_german_and_as_written_otherwise():
    assert words.text("de", "My work") == "Meine Arbeit"
    assert words.text("de-AT", "%(entity)s board", entity="Chance") == "Chance-Board"
    assert words.text("fr", "My work") == "My work"  # no French catalog: as written
    assert words.text("en", "Not a message anyone wrote") == "Not a message anyone wrote"


def test_templates_read_the_language_they_are_rendered_in():
    env = Environment(autoescape=True)
    words.install(env)
    page = env.from_string('{% trans %}My work{% endtrans %} | {{ _("%(entity)s board", entity="<b>") }}')
    with words.reading("de"):
        assert page.render() == "Meine Arbeit | &lt;b&gt;-Board"
    assert page.render() == "My work | &lt;b&gt; board"  # outside: as written, and still escaped
