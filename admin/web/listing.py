"""The directory's query: search, filters with operators, chosen columns, sort and page, as the URL carries them.

`Listing.parse(params)` reads the query string the directory form sends and never raises: a page number
that is not one becomes a note. `Catalogue(entity)` knows what a directory can show, filter and sort on.
`resolve(...)` checks a listing against the entity and turns its filters into `runtime.records.search_records`
filters, reading values as people type them (a choice's label, a user's name, a company's name, a date in
their time zone); what it cannot read becomes a problem to show on the page.

The form sends one row per filter: `f1` (field; empty: any field), `o1` (operator), `v1` (value), up to
MAX_FILTERS; `own=NAME` (a record has a field of its own by that name); `cols=1` with `col=NAME` for each
chosen column; `sort`, `per` and `page`.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from engine import pages
from engine.compiler import CompiledModel
from engine.errors import NOWHERE
from engine.model import Entity, Field
from forms import widgets
from runtime import records, words
from runtime import values as V
from runtime.schema import users

from .finders import MAX_ID

MAX_FILTERS = 10
PAGE_SIZES = (10, 25, 50, 100)
DEFAULT_PAGE_SIZE = 50
MAX_MATCHES = 500  # names a filter may stand for ("company contains a"): past this, ask for a closer name
OWN = records.RECORD_FIELD_PREFIX

OPERATORS = {"contains": "contains", "eq": "is", "startswith": "starts with", "in": "is one of (a, b, …)",
             "lt": "before / less than", "gt": "after / more than", "empty": "is empty", "notempty": "is not empty"}
NO_VALUE = frozenset({"empty", "notempty"})

# Which operators make sense for which kind of column; a kind is named by `kind_of`.
KIND_OPERATORS: dict[str, tuple[str, ...]] = {
    "text": ("contains", "eq", "startswith", "in", "empty", "notempty"),
    "own": ("contains", "eq", "startswith", "lt", "gt", "empty", "notempty"),  # stored as text; ISO dates order as text
    "ordered": ("eq", "lt", "gt", "empty", "notempty"),
    "number": ("eq", "contains", "in", "lt", "gt"),  # a record's own number: "#12" of a support request, or part of it
    "choice": ("eq", "in", "empty", "notempty"),
    "reference": ("eq", "contains", "in", "empty", "notempty"),
    "boolean": ("eq", "empty", "notempty"),
    "any": ("contains",),
}
KINDS = {**dict.fromkeys(("string", "text", "email", "phone", "url"), "text"),
         **dict.fromkeys(("integer", "decimal", "money", "date", "datetime"), "ordered"),
         **dict.fromkeys(("choice", "multichoice", "user", "group"), "choice"),
         "reference": "reference", "boolean": "boolean"}
LISTABLE = pages.LISTABLE | {"multichoice"}
SYSTEM = {"created_at": "Created", "updated_at": "Last changed"}
_ONLY_FIELD = re.compile(r"^\{\{\s*record\.([a-z][a-z0-9_]*)\s*\}\}$")
_SHOWN_AS_IS = re.compile(r"\{\{\s*record\.([a-z][a-z0-9_]*)\s*\}\}")


def kind_of(f: Field) -> str:
    """The kind of column a field makes (which operators apply)."""
    return KINDS.get(f.type, "text")


def _made_up(name: str, type_name: str, label: str) -> Field:
    return Field(name=name, type=type_name, loc=NOWHERE, label=label)


@dataclass(frozen=True)
class Column:
    """Something a directory can show, filter and sort on."""

    name: str     # as the URL says it: 'title', a field, 'created_at', or 'record_fields.NAME'
    label: str
    field: Field  # how its values look and are typed (made up for the title, system and own fields)
    kind: str     # a key of KIND_OPERATORS

    @property
    def own(self) -> bool:
        return self.name.startswith(OWN)

    @property
    def operators(self) -> tuple[str, ...]:
        return KIND_OPERATORS[self.kind]


class Catalogue:
    """What one entity's directory can show, filter and sort on."""

    def __init__(self, e: Entity, own_fields: Mapping[str, tuple[str, str]] | None = None, locale: str | None = None):
        self.entity, self.locale = e, locale  # the page's language: the system columns' labels and the problems' words
        title_only = _ONLY_FIELD.match(e.title.source.strip()) if e.title else None
        # a title that is one field already shows that field: it is the title column, not a second one
        self.title_field = title_only.group(1) if title_only else None
        self.title = Column("title", e.label, _made_up("title", "string", e.label), "text")
        self.fields = [Column(f.name, _label(e, f), f, kind_of(f)) for f in e.all_fields() if f.name != self.title_field]
        self.system = [Column(n, label, _made_up(n, "datetime", label), "ordered")
                       for n, label in ((n, words.text(locale, label)) for n, label in SYSTEM.items())]
        number = words.text(locale, "Number")
        self.number = Column("id", number, _made_up("id", "integer", number), "number")
        self.own: dict[str, Column] = {}
        for name, (type_name, label) in (own_fields or {}).items():
            self.add_own(name, type_name, label)

    def add_own(self, name: str, type_name: str = "string", label: str = "") -> Column | None:
        """A record's own field as a column (its type as one record has it; text when unknown)."""
        if not records.RECORD_FIELD_NAME.match(name):
            return None
        if name not in self.own or (type_name != "string" and self.own[name].field.type == "string"):
            label = label or name.replace("_", " ").capitalize()
            self.own[name] = Column(OWN + name, label, _made_up(name, type_name, label), "own")
        return self.own[name]

    def get(self, name: str) -> Column | None:
        """The column a URL names, or None."""
        if name == "title" or name == self.title_field:
            return self.title
        if name.startswith(OWN):
            return self.own.get(name[len(OWN):]) or self.add_own(name[len(OWN):])
        return next((c for c in [*self.fields, *self.system, self.number] if c.name == name), None)

    def filterable(self) -> list[Column]:
        return [self.title, *self.fields, *self.system, self.number, *self.own.values()]

    def listable(self) -> list[Column]:
        return [*(c for c in self.fields if c.field.type in LISTABLE), *self.system, *self.own.values()]

    def defaults(self) -> list[Column]:
        return [c for f in pages.columns(self.entity) if (c := self.get(f.name)) is not None and c is not self.title]

    def search_targets(self) -> tuple[str, ...]:
        """What 'any field' and the search box look in: the title and the entity's text search fields.

        A field the title shows as it is ('{{ record.last_name }}') is found through the title already: looking
        in it again would only read every record's data for nothing."""
        shown = set(_SHOWN_AS_IS.findall(self.entity.title.source)) if self.entity.title else set()
        names = ["title"]
        for name in pages.search_fields(self.entity):
            c = self.get(name)
            if c is not None and c.kind == "text" and c.name not in names and c.name not in shown:
                names.append(c.name)
        return tuple(names)


def _label(e: Entity, f: Field) -> str:
    group = next((g for g in e.groups if any(x.name == f.name for x in g.fields)), None)
    return f"{f.label} ({group.label})" if group else f.label


# -- the query string -------------------------------------------------------------------


@dataclass(frozen=True)
class Filter:
    field: str                # '' for any field
    op: str
    values: tuple[str, ...]   # as typed (several for 'is one of')

    @property
    def text(self) -> str:
        return ", ".join(self.values)


@dataclass(frozen=True)
class Listing:
    """One directory query, as typed: nothing here is checked against the entity yet."""

    q: str = ""
    filters: tuple[Filter, ...] = ()
    columns: tuple[str, ...] | None = None  # None: the entity's default columns
    sort: str = "title"
    per: int = DEFAULT_PAGE_SIZE
    page: int = 1
    notes: tuple[str, ...] = field(default=())  # what was not understood and how it was read instead

    @classmethod
    def parse(cls, params: Any, locale: str | None = None) -> Listing:
        """The query of a request's parameters (a Starlette QueryParams or FormData, or any multi-dict); its notes in
        `locale` (the page's language)."""
        notes = []
        first = lambda key: str(params.get(key) or "").strip()
        filters = []
        for i in range(1, MAX_FILTERS + 1):
            name, op = first(f"f{i}"), first(f"o{i}") or "contains"
            values = tuple(v.strip() for raw in params.getlist(f"v{i}") for v in _split(str(raw), op) if v.strip())
            if name or values or op in NO_VALUE and f"f{i}" in params:
                filters.append(Filter(name, op, values))
        for own in (v.strip() for raw in params.getlist("own") for v in str(raw).split(",")):
            if own and len(filters) < MAX_FILTERS:  # "has a field of its own named ...": a filter like any other from here on
                filters.append(Filter(OWN + own.lower().replace(" ", "_"), "notempty", ()))
        chosen = params.getlist("col")
        columns = tuple(dict.fromkeys(str(c).strip() for c in chosen if str(c).strip())) if chosen or params.get("cols") else None
        per = first("per")
        per = int(per) if per.isdigit() and int(per) in PAGE_SIZES else DEFAULT_PAGE_SIZE
        raw_page, page = first("page"), 1
        if raw_page:
            if raw_page.isdigit() and int(raw_page) >= 1:
                page = min(int(raw_page), 10**9)
            else:
                notes.append(words.text(locale, "“%(typed)s” is not a page number, so this is the first page.", typed=raw_page[:40]))
        return cls(q=first("q"), filters=tuple(filters), columns=columns, sort=first("sort") or "title", per=per, page=page,
                   notes=tuple(notes))

    def pairs(self, *, page: int | None = None, sort: str | None = None) -> list[tuple[str, str]]:
        """The query string's parameters (the page only when asked for)."""
        out: list[tuple[str, str]] = [("q", self.q)] if self.q else []
        for i, f in enumerate(self.filters, 1):
            out += [(f"f{i}", f.field), (f"o{i}", f.op)] + [(f"v{i}", v) for v in f.values]
        if self.columns is not None:
            out += [("cols", "1")] + [("col", c) for c in self.columns]
        sort = self.sort if sort is None else sort
        if sort != "title":
            out.append(("sort", sort))
        if self.per != DEFAULT_PAGE_SIZE:
            out.append(("per", str(self.per)))
        if page is not None and page != 1:
            out.append(("page", str(page)))
        return out

    def query(self, **kw: Any) -> str:
        """The query string of this listing (see `pairs`)."""
        return urlencode(self.pairs(**kw))


def directory_url(entity: str, field_name: str, value: Any) -> str:
    """The directory of `entity` showing the records whose `field_name` is `value` (a reference by its record's id)."""
    return f"/directory/{entity}?{Listing(filters=(Filter(field_name, 'eq', (str(value),)),)).query()}"


def _split(raw: str, op: str) -> list[str]:
    return raw.split(",") if op == "in" else [raw]


# -- checking it against the entity -----------------------------------------------------


@dataclass
class Resolved:
    """A listing checked against its entity: what to show, what to ask the store, and what was wrong."""

    columns: list[Column]
    sort: str
    filters: list[tuple[Any, Any]]   # for records.search_records
    problems: list[str]              # the query cannot be run as asked: shown, with status 400
    notes: list[str]                 # read otherwise than written (a bad page number or sort): shown, status 200
    shown: dict[int, str] = field(default_factory=dict)  # filter index -> what its value box shows, where not as typed


def resolve(conn: sa.Connection, compiled: CompiledModel, catalogue: Catalogue, listing: Listing, zone: ZoneInfo) -> Resolved:
    """Check the listing against the entity and read its filter values; every problem at once (in the catalogue's language)."""
    locale = catalogue.locale
    notes, problems = list(listing.notes), []
    if listing.columns is None:
        columns = catalogue.defaults()
    else:
        columns = []
        for name in listing.columns:
            c = catalogue.get(name)
            if c is None:
                notes.append(words.text(locale, "There is no column “%(name)s” for %(things)s; it is left out.", name=name[:60],
                                        things=in_sentence(locale, catalogue.entity.plural)))
            elif c is not catalogue.title and c not in columns:
                columns.append(c)
    sort = listing.sort
    sorted_on = catalogue.get(sort.removeprefix("-"))
    if sorted_on is None:
        problems.append(words.text(locale, "%(things)s cannot be sorted by “%(sort)s”: there is no such column.", things=catalogue.entity.plural,
                                   sort=sort[:60]))
        sort = "title"
    else:
        sort = ("-" if sort.startswith("-") else "") + sorted_on.name
    filters: list[tuple[Any, Any]] = []
    if listing.q and (problem := V.text_problem(listing.q)):
        problems.append(words.text(locale, "What to search for %(problem)s.", problem=problem))
    elif listing.q:
        filters.append((catalogue.search_targets(), {"contains": listing.q}))
    shown: dict[int, str] = {}
    for i, f in enumerate(listing.filters):
        try:
            filters.append(_filter(conn, compiled, catalogue, f, zone))
        except Unreadable as exc:
            problems.append(str(exc))
            continue
        column = catalogue.get(f.field)
        if column is not None and column.kind == "reference" and f.values and all(v.isdigit() for v in f.values):
            titles = records.get_records(conn, compiled, column.field.entity, filters[-1][1]["in"])
            shown[i] = ", ".join(r.title for r in titles.values())  # names, not the ids a link used
    return Resolved(columns, sort, filters, problems, notes, shown)


class Unreadable(ValueError):
    """A filter that cannot be read; the message says why, in the page's words."""


def _filter(conn: sa.Connection, compiled: CompiledModel, catalogue: Catalogue, f: Filter, zone: ZoneInfo) -> tuple[Any, Any]:
    locale = catalogue.locale
    op_text = lambda op: words.text(locale, OPERATORS[op])
    if f.op not in OPERATORS:
        raise Unreadable(words.text(locale, "“%(op)s” is not a way to compare; use one of: %(ops)s.", op=f.op[:40],
                                    ops=", ".join(op_text(o) for o in OPERATORS)))
    for text in (f.field, *f.values):
        if (problem := V.text_problem(text)):
            raise Unreadable(words.text(locale, "A filter %(problem)s.", problem=problem))
    if not f.field:
        if f.op != "contains":
            raise Unreadable(words.text(locale, "“— any field —” can only be searched with “contains”, not “%(op)s”.", op=op_text(f.op)))
        if not f.values:
            raise Unreadable(words.text(locale, "“— any field —” needs something to look for."))
        return catalogue.search_targets(), {"contains": f.text}
    column = catalogue.get(f.field)
    if column is None:
        raise Unreadable(words.text(locale, "%(things)s have no field “%(name)s”.", things=catalogue.entity.plural, name=f.field[:60]))
    if f.op not in column.operators:
        allowed = ", ".join(f"“{op_text(o)}”" for o in column.operators)
        raise Unreadable(words.text(locale, "%(field)s cannot be compared with “%(op)s”; use %(ops)s.", field=column.label, op=op_text(f.op),
                                    ops=allowed))
    if f.op in NO_VALUE:
        return column.name, {"empty": f.op == "empty"}
    if not f.values:
        raise Unreadable(words.text(locale, "%(field)s %(op)s: type what to compare with.", field=column.label, op=op_text(f.op)))
    if column.kind in ("text", "own") or (column.kind == "number" and f.op == "contains"):  # digits of a number, as typed
        return column.name, {f.op: list(f.values) if f.op == "in" else f.text}
    read = [_value(conn, compiled, column, v, zone, f.op, locale) for v in f.values]
    if column.kind == "reference" or column.field.type == "user":  # a name may stand for several records or users
        ids = sorted({i for found in read for i in found})
        return column.name, {"in": ids}
    if f.op == "in" or len(read) > 1:
        return column.name, {"in": read}
    return column.name, {f.op: read[0]}


def _value(conn: sa.Connection, compiled: CompiledModel, column: Column, text: str, zone: ZoneInfo, op: str, locale: str | None) -> Any:
    """What a typed value stands for, in the form the store keeps it (why not, in `locale`)."""
    reader = READERS.get(column.field.type, _typed)
    return reader(conn, compiled, column, text, zone, op, locale)


def in_sentence(locale: str | None, noun: str) -> str:
    """A label as a sentence names it: English lowercases it ('these companies'); German keeps its nouns capitalised."""
    return noun.lower() if (locale or words.DEFAULT)[:2] == "en" else noun


def _typed(conn, compiled, column: Column, text: str, zone: ZoneInfo, op: str, locale: str | None = None) -> Any:
    loose = dataclasses.replace(column.field, min=None, max=None, min_length=None, max_length=None, pattern=None,
                                required=False, unique=False, default=None)  # a filter's value need not be a valid value
    try:
        return widgets.get(loose.type).parse(text, loose, zone)
    except V.NotConvertible as exc:
        raise Unreadable(words.text(locale, "%(field)s: “%(typed)s” %(problem)s.", field=column.label, typed=text[:60], problem=exc)) from None


def _choice(conn, compiled, column: Column, text: str, zone: ZoneInfo, op: str, locale: str | None = None) -> Any:
    wanted = text.casefold()
    for c in column.field.choices:
        if wanted in (str(c.value).casefold(), c.label.casefold()):
            return c.value
    offered = ", ".join(c.label for c in column.field.choices)
    raise Unreadable(words.text(locale, "%(field)s: “%(typed)s” is not one of its choices (%(choices)s).", field=column.label, typed=text[:60],
                                choices=offered))


def _group(conn, compiled, column: Column, text: str, zone: ZoneInfo, op: str, locale: str | None = None) -> Any:
    wanted = text.casefold()
    for name, g in compiled.model.groups.items():
        if wanted in (name.casefold(), g.label.casefold()):
            return name
    raise Unreadable(words.text(locale, "%(field)s: there is no group “%(typed)s”.", field=column.label, typed=text[:60]))


def _boolean(conn, compiled, column: Column, text: str, zone: ZoneInfo, op: str, locale: str | None = None) -> Any:
    if text.casefold() in V.TRUE_TEXT:
        return True
    if text.casefold() in V.FALSE_TEXT:
        return False
    raise Unreadable(words.text(locale, "%(field)s: “%(typed)s” is not yes or no.", field=column.label, typed=text[:60]))


def _user(conn, compiled, column: Column, text: str, zone: ZoneInfo, op: str, locale: str | None = None) -> list[int]:
    wanted = text.casefold()
    found = [uid for uid, name, username in conn.execute(sa.select(users.c.id, users.c.name, users.c.username))
             if wanted in ((name or "").casefold(), (username or "").casefold())]
    if not found:
        raise Unreadable(words.text(locale, "%(field)s: nobody is called “%(typed)s”.", field=column.label, typed=text[:60]))
    return found


def _reference(conn, compiled, column: Column, text: str, zone: ZoneInfo, op: str, locale: str | None = None) -> list[int]:
    target = compiled.model.entities[column.field.entity]
    how = "contains" if op == "contains" else "startswith"
    page = records.search_records(conn, compiled, target.name, {"title": {how: text}}, sort="title", page_size=MAX_MATCHES)
    found = [r.id for r in page.items if op == "contains" or r.title.casefold() == text.casefold()]
    if not found and op != "contains" and text.isdigit() and int(text) <= MAX_ID:
        found = list(records.get_records(conn, compiled, target.name, [int(text)]))  # a link from a record page names it by id
    if op == "contains" and page.total > MAX_MATCHES:
        raise Unreadable(words.text(locale, "%(field)s: more than %(n)s %(things)s contain “%(typed)s”; type more of the name.",
                                    field=column.label, n=MAX_MATCHES, things=in_sentence(locale, target.plural), typed=text[:60]))
    if not found:
        said = "%(field)s: no %(thing)s is called “%(typed)s”." if op != "contains" else "%(field)s: no %(thing)s's name contains “%(typed)s”."
        raise Unreadable(words.text(locale, said, field=column.label, thing=in_sentence(locale, target.label), typed=text[:60]))
    return found


READERS = {"choice": _choice, "multichoice": _choice, "group": _group, "boolean": _boolean, "user": _user,
           "reference": _reference}


def own_fields_in(rows: Iterable[records.Record]) -> dict[str, tuple[str, str]]:
    """The single-record fields the records have: name -> (type, label), in the order first met."""
    out: dict[str, tuple[str, str]] = {}
    for r in rows:
        for name, entry in r.record_fields.items():
            out.setdefault(name, (str(entry.get("type") or "string"), str(entry.get("label") or name)))
    return out


def cell(record: records.Record, column: Column) -> tuple[Any, Field]:
    """A record's value in a column, and the field that says how it looks (an own field's as the record has it)."""
    if column.own:
        entry = record.record_fields.get(column.name[len(OWN):])
        if not entry:
            return None, column.field
        return entry.get("value"), _made_up(column.field.name, str(entry.get("type") or "string"), column.label)
    if column.name == "title":
        return record.title, column.field
    if column.name in SYSTEM:
        return getattr(record, column.name), column.field
    return record.data.get(column.name), column.field
