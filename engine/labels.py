"""Translations of labels: `kind: labels` documents, one language of a pack each, and the model in a language.

A pack may translate its own definitions and its base packs' (entities, fields, choices, forms, processes and
their step titles, plain or templates, roles, groups). Later packs win over their bases, entry by entry. What is not translated
keeps its default label, so a half-done translation still reads. Names, values and process specs never change:
a translated model differs from the default only in what people read, and workflows never see it.
"""
from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType
from typing import Any, Iterable, Iterator, Mapping

from .errors import Loc, Problem
from .model import Choice, Entity, Field, Form, GroupDef, Model, ParallelStep, Process, Role, Section, Step, Translation, walk
from .source import Document, pointer_join as J

#: the language definitions are written in: a user who picks it, or names no shipped language, reads them as written
DEFAULT = "en"
DEFAULT_LANGUAGE = "English"

Key = tuple[str, ...]
# ("entity", NAME, "label" | "plural" | "description")            ("entity", NAME, "group" | "link", G)
# (OWNER, NAME, "field", F, "label" | "help" | "placeholder")    (OWNER, NAME, "field", F, "choice", VALUE)
# ("form", NAME, "label" | "description" | "portal_description")  ("form", NAME, "section", TITLE AS WRITTEN, "title" | "help")
# ("process", NAME, "label" | "description")                       ("process", NAME, "step", STEP)
# ("role", NAME)                                   ("group", NAME)
# OWNER is "entity", "form" or "process" (whose fields are its inputs).


class Label(str):
    """A translated label. It keeps the case its translator wrote: the pages' sentences lowercase a label as written
    where it falls mid-sentence ('Edit this company'), which would misspell nouns of languages that capitalise them
    ('Firma'); comparisons that ignore case use `casefold`."""

    __slots__ = ()

    def lower(self) -> str:
        return str(self)


# -- building --------------------------------------------------------------------


def build(doc: Document, pack: str) -> Translation:
    """A schema-valid `kind: labels` document as a Translation."""
    d: dict[str, Any] = doc.data
    entries: dict[Key, str] = {}
    names: dict[Key, Loc] = {}

    def name(key: Key, ptr: str) -> None:
        names[key] = doc.key_loc(ptr)

    def fields(owner: Key, raw: Mapping[str, Any] | None, ptr: str) -> None:
        for f, spec in (raw or {}).items():
            key, fptr = (*owner, "field", f), J(ptr, f)
            name(key, fptr)
            if isinstance(spec, str):
                entries[(*key, "label")] = spec
                continue
            for attr in ("label", "help", "placeholder"):
                if attr in spec:
                    entries[(*key, attr)] = spec[attr]
            for value, text in (spec.get("choices") or {}).items():
                name((*key, "choice", str(value)), J(J(fptr, "choices"), str(value)))
                entries[(*key, "choice", str(value))] = text

    for e, spec in (d.get("entities") or {}).items():
        key, ptr = ("entity", e), J("/entities", e)
        name(key, ptr)
        entries.update({(*key, a): spec[a] for a in ("label", "plural", "description") if a in spec})
        fields(key, spec.get("fields"), J(ptr, "fields"))
        for part in ("group", "link"):
            for n, text in (spec.get(part + "s") or {}).items():
                name((*key, part, n), J(J(ptr, part + "s"), n))
                entries[(*key, part, n)] = text
    for f, spec in (d.get("forms") or {}).items():
        key, ptr = ("form", f), J("/forms", f)
        name(key, ptr)
        entries.update({(*key, a): spec[a] for a in ("label", "description", "portal_description") if a in spec})
        fields(key, spec.get("fields"), J(ptr, "fields"))
        for title, text in (spec.get("sections") or {}).items():
            name((*key, "section", title), J(J(ptr, "sections"), title))
            given = {"title": text} if isinstance(text, str) else text
            entries.update({(*key, "section", title, a): given[a] for a in ("title", "help") if a in given})
    for p, spec in (d.get("processes") or {}).items():
        key, ptr = ("process", p), J("/processes", p)
        name(key, ptr)
        entries.update({(*key, a): spec[a] for a in ("label", "description") if a in spec})
        fields(key, spec.get("inputs"), J(ptr, "inputs"))
        for step, text in (spec.get("steps") or {}).items():
            name((*key, "step", step), J(J(ptr, "steps"), step))
            entries[(*key, "step", step)] = text
    for kind in ("role", "group"):
        for n, text in (d.get(kind + "s") or {}).items():
            name((kind, n), J(f"/{kind}s", n))
            entries[(kind, n)] = text
    return Translation(d["locale"], pack, doc.loc("/locale"), d.get("language", ""),
                       MappingProxyType({k: Label(v.strip()) for k, v in entries.items()}), MappingProxyType(names))


# -- checking --------------------------------------------------------------------


def plain(template: str) -> bool:
    """Whether a title is plain text, not a template (a template title's translation is rendered when its task is made)."""
    return "{{" not in template and "{%" not in template


def _steps(p: Process) -> dict[str, Step]:
    return {s.id: s for s in walk(p.steps)}


def _owner(model: Model, kind: str, name: str) -> Any:
    return {"entity": model.entities, "form": model.forms, "process": model.processes, "role": model.roles,
            "group": model.groups}[kind].get(name)


def _fields(d: Any) -> tuple[Field, ...]:
    if isinstance(d, Entity):
        return d.all_fields()
    return d.fields if isinstance(d, Form) else d.inputs


def _listing(names: Iterable[str]) -> str:
    names = sorted(names)
    return ", ".join(names) if names else "none"


_WORDS = {"entity": "entity", "form": "form", "process": "process", "role": "role", "group": "group"}


def iter_problems(models: tuple[Model, ...], t: Translation, ancestors: set[str],
                  broken: set[tuple[str, str]] = frozenset()) -> Iterator[Problem]:
    """Every name `t` translates that exists in none of `models`, or that belongs to a pack `t`'s pack does not build on
    (`broken`: (kind, name) of documents too broken to build, already reported).

    `models` are the model and its definitions before overlays: a base pack's translation of a field a client's overlay
    removed (or an administrator's change in the console) is not wrong, only unused; a client's translation of a field
    its overlay added is right. The problem told is the first model's."""
    own = {t.pack, *ancestors}
    failed: set[Key] = {k for k in t.names if k[:2] in broken}
    for key, loc in sorted(t.names.items(), key=lambda kv: len(kv[0])):
        if any(key[:n] in failed for n in range(2, len(key))):
            continue  # its entity, form or field is already reported
        found = [_problem(m, key, own, t.pack) for m in models]
        if all(found):
            failed.add(key)
            yield Problem(loc, *found[0])
        elif key[2:3] == ("step",) and (wrong := _template_problem(t.entries.get(key, ""))):
            yield Problem(loc, "labels.template", f"the title of step '{key[3]}' of process '{key[1]}' {wrong}")


def _template_problem(text: str) -> str | None:
    """What is wrong with a translated title that is a template, if it cannot be parsed."""
    if plain(text):
        return None
    from jinja2 import TemplateSyntaxError

    from .expressions import ENV
    try:
        ENV.parse(text)
    except TemplateSyntaxError as exc:
        return f"is not a valid template: {exc.message}"
    return None


def _problem(model: Model, key: Key, own: set[str], pack: str) -> tuple[str, str] | None:
    kind, name = key[0], key[1]
    d = _owner(model, kind, name)
    word = _WORDS[kind]
    if len(key) == 2:
        if d is None:
            known = {"entity": model.entities, "form": model.forms, "process": model.processes, "role": model.roles, "group": model.groups}[kind]
            return "labels.unknown", f"there is no {word} '{name}' to translate (known: {_listing(known)})"
        if d.pack not in own:
            return "labels.not-based", f"{word} '{name}' comes from pack '{d.pack}', which pack '{pack}' does not extend"
        return None
    part, item = key[2], key[3]
    if part == "field":
        fields = {f.name: f for f in _fields(d)}
        # a field the base renamed (`renamed_from`) keeps its translation under the name it was translated as
        f = fields.get(item) or next((x for x in fields.values() if x.renamed_from == item), None)
        where = f"{word} '{name}'" if kind != "process" else f"the inputs of process '{name}'"
        if f is None:
            return "labels.unknown", f"{where} has no field '{item}' (fields: {_listing(fields)})"
        if len(key) == 6:  # a choice
            values = {str(c.value) for c in f.choices}
            if not values:
                return "labels.unknown", f"field '{item}' of {where} has no choices to translate"
            if key[5] not in values:
                return "labels.unknown", f"field '{item}' of {where} has no choice '{key[5]}' (choices: {_listing(values)})"
        return None
    if part == "group":
        groups = {g.name for g in d.groups}
        return None if item in groups else ("labels.unknown", f"entity '{name}' has no group '{item}' (groups: {_listing(groups)})")
    if part == "link":
        links = {lk.name for lk in d.links}
        return None if item in links else ("labels.unknown", f"entity '{name}' has no link '{item}' (links: {_listing(links)})")
    if part == "section":
        titles = {s.title for s in d.layout if s.title}
        return None if item in titles else ("labels.unknown", f"form '{name}' has no section titled '{item}' (sections: {_listing(titles)})")
    assert part == "step"
    steps = _steps(d)
    s = steps.get(item)
    if s is None:
        return "labels.unknown", f"process '{name}' has no step '{item}' (steps: {_listing(steps)})"
    if isinstance(s, ParallelStep):
        return "labels.untitled", f"step '{item}' of process '{name}' is a parallel block: it has no title of its own"
    return None


def merged(translations: Iterable[Translation], rank: Mapping[str, int]) -> Iterator[Problem | Translation]:
    """One Translation per language from every pack's (later packs win, entry by entry); a pack translating one language
    twice is a problem."""
    by_locale: dict[str, list[Translation]] = {}
    for t in sorted(translations, key=lambda t: rank.get(t.pack, 0)):
        first = next((x for x in by_locale.get(t.locale, ()) if x.pack == t.pack), None)
        if first is not None:
            yield Problem(t.loc, "labels.duplicate", f"pack '{t.pack}' already translates '{t.locale}' at {first.loc}")
            continue
        by_locale.setdefault(t.locale, []).append(t)
    for locale, ts in sorted(by_locale.items()):
        entries: dict[Key, str] = {}
        for t in ts:
            entries.update(t.entries)
        language = next((t.language for t in reversed(ts) if t.language), "")
        yield Translation(locale, ts[-1].pack, ts[-1].loc, language, MappingProxyType(entries))


# -- asking ------------------------------------------------------------------------


def languages(model: Model) -> list[tuple[str, str]]:
    """(locale, the language's own name) of every language the packs ship, the default's first."""
    return [(DEFAULT, DEFAULT_LANGUAGE)] + [(loc, t.title) for loc, t in sorted(model.translations.items()) if loc != DEFAULT]


def label(model: Model, locale: str | None, key: Key, default: str) -> str:
    """What `key` reads in `locale`, else `default` (the label as defined)."""
    t = model.translations.get(locale or DEFAULT)
    return t.entries.get(key, default) if t else default


def pick(model: Model, wanted: Iterable[str | None]) -> str:
    """The first of `wanted` (a user's choice, then the browser's languages by preference) that the packs ship, else the default.

    'de-AT' is served by 'de'; the default language is always shipped."""
    shipped = set(model.translations) | {DEFAULT}
    for w in wanted:
        if not w:
            continue
        if w in shipped:
            return w
        primary = w.split("-")[0].lower()
        if primary in shipped:
            return primary
    return DEFAULT


def accept_language(header: str | None) -> list[str]:
    """The languages of an Accept-Language header, most wanted first ('*' and malformed parts left out)."""
    out: list[tuple[float, int, str]] = []
    for i, part in enumerate((header or "")[:1000].split(",")):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip()
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                continue
        if tag and tag != "*" and q > 0 and len(tag) <= 20:
            out.append((-q, i, tag))
    return [tag for _, _, tag in sorted(out)]


# -- the model in a language ------------------------------------------------------------


_KEPT = 8  # (model, language) pairs remembered: a release brings a new model
_translated: dict[tuple[int, str], tuple[Model, Model]] = {}


def translate(model: Model, locale: str | None) -> Model:
    """`model` with every label the translation into `locale` gives; the model itself when it has none. Translated once
    per model and language (a translation takes milliseconds; tasks, alerts and pages ask for one again and again)."""
    t = model.translations.get(locale or "")
    if t is None or not t.entries:
        return model
    hit = _translated.get((id(model), t.locale))
    if hit is None or hit[0] is not model:  # an id may be reused once a model is gone
        if len(_translated) >= _KEPT:
            _translated.clear()
        hit = _translated[(id(model), t.locale)] = (model, _translate(model, t))
    return hit[1]


def _translate(model: Model, t: Translation) -> Model:
    get = t.entries.get

    def fld(owner: Key, f: Field) -> Field:
        names = (f.name, f.renamed_from) if f.renamed_from else (f.name,)  # its translation under a name it was renamed from
        def of(*part: str, default: str) -> str:
            return next((t.entries[k] for k in ((*owner, "field", n, *part) for n in names) if k in t.entries), default)
        choices = tuple(Choice(c.value, of("choice", str(c.value), default=c.label)) for c in f.choices)
        return replace(f, label=of("label", default=f.label), help=of("help", default=f.help),
                       placeholder=of("placeholder", default=f.placeholder), choices=choices)

    def entity(e: Entity) -> Entity:
        k = ("entity", e.name)
        return replace(e, label=get((*k, "label"), e.label), plural=get((*k, "plural"), e.plural),
                       description=get((*k, "description"), e.description),
                       fields=tuple(fld(k, f) for f in e.fields),
                       groups=tuple(replace(g, label=get((*k, "group", g.name), g.label), fields=tuple(fld(k, f) for f in g.fields))
                                    for g in e.groups),
                       links=tuple(replace(lk, label=get((*k, "link", lk.name), lk.label)) for lk in e.links))

    def section(k: Key, s: Section) -> Section:
        return replace(s, title=get((*k, "section", s.title, "title"), s.title), help=get((*k, "section", s.title, "help"), s.help))

    def form(f: Form) -> Form:
        k = ("form", f.name)
        label = get((*k, "label"), f.label)
        # a form without a layout has one section, titled with the form's label: it reads as the label does
        layout = tuple(replace(s, title=label) if not f.layout_given and s.title == f.label and (*k, "section", s.title, "title") not in t.entries
                       else section(k, s) for s in f.layout)
        return replace(f, label=label, description=get((*k, "description"), f.description),
                       portal_description=get((*k, "portal_description"), f.portal_description),
                       fields=tuple(fld(k, x) for x in f.fields), layout=layout)

    def step(k: Key, s: Step) -> Step:
        if isinstance(s, ParallelStep):
            return replace(s, branches=tuple((n, tuple(step(k, x) for x in b)) for n, b in s.branches))
        text = get((*k, "step", s.id))
        return replace(s, title=replace(s.title, source=text)) if text else s

    def process(p: Process) -> Process:
        k = ("process", p.name)
        return replace(p, label=get((*k, "label"), p.label), description=get((*k, "description"), p.description), inputs=tuple(fld(k, f) for f in p.inputs),
                       steps=tuple(step(k, s) for s in p.steps))

    def named(kind: str, d: Role | GroupDef):
        return replace(d, label=get((kind, d.name), d.label))

    return replace(
        model, locale=t.locale,
        entities=MappingProxyType({n: entity(e) for n, e in model.entities.items()}),
        forms=MappingProxyType({n: form(f) for n, f in model.forms.items()}),
        processes=MappingProxyType({n: process(p) for n, p in model.processes.items()}),
        roles=MappingProxyType({n: named("role", r) for n, r in model.roles.items()}),
        groups=MappingProxyType({n: named("group", g) for n, g in model.groups.items()}),
    )


def task_title(task: Mapping[str, Any], locale: str | None, model: Model | None = None) -> str:
    """The title of `task` (a tasks row) for a reader of `locale`: as its step's title in that language made it when the
    task was created (tasks.titles), else, on a task made before titles were kept, its step's plain title as `model`
    translates it, else the title it was made with (`tasks.title`, in the definitions' own language: with display
    values, a choice's label, a name, a date in words, `runtime.tasktitles`; on older tasks as the workflow wrote it)."""
    title = task.get("title") or ""
    if not locale or locale == DEFAULT:
        return title
    made = (task.get("titles") or {}).get(locale)
    if made:
        return made
    if model is None:
        return title
    text = label(model, locale, ("process", task.get("process") or "", "step", task.get("step_id") or ""), title)
    return text if plain(text) else title  # a template's translation reads only as its task's titles rendered it
