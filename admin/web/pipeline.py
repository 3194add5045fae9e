"""The pipeline board of an entity with stages: a column per stage value, its cards, counts and totals, and moving a card.

An entity marks a choice field as its stages (`pages: stages: stage`); the board shows each record as a card
with its title, its value (the entity's first money field) and its owner (its first user field). Moving a card
is an ordinary record change through `runtime.records.update_record`: validated, audited, in the contact history,
starting the processes its record triggers start, and refused when the record changed since the board was read.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from markupsafe import Markup

from engine import pages as entity_pages
from engine.compiler import CompiledModel, is_column
from engine.errors import TailorError
from engine.model import Entity, Field
from forms import widgets
from runtime import records, words

from .listing import directory_url, in_sentence

CARDS_SHOWN = 50  # cards per column; past this the column links to the directory, filtered on the stage
SCOPES = ("reference", "user")  # fields a board can be narrowed to: one company's deals, one owner's


class NotAStage(TailorError):
    """The stage a card was to be moved to is not one of the board's columns."""


@dataclass(frozen=True)
class Card:
    id: int
    title: str
    row_version: int
    value: Markup
    owner: str
    stage: str


@dataclass(frozen=True)
class Column:
    value: str
    label: str
    cards: list[Card]
    count: int
    total: str  # the sum of the cards' values, as money reads ('' without a value field)
    more_url: str | None


@dataclass(frozen=True)
class Board:
    entity: Entity
    stage: Field
    value: Field | None
    owner: Field | None
    columns: list[Column]
    scope: dict[str, int]  # {reference or user field: id}: only the cards of one company, one owner, ...
    scope_text: str  # "company is Acme Health" ('' for the whole board)

    @property
    def query(self) -> str:
        """The scope as a query string, so a move comes back to the same board."""
        return "&".join(f"{k}={v}" for k, v in self.scope.items())


def stage_field(ent: Entity) -> Field | None:
    """The entity's stage field, if it has a board."""
    return entity_pages.stages(ent)


def value_field(ent: Entity) -> Field | None:
    """What a card is worth: the entity's first money field."""
    return next((f for f in ent.fields if f.type == "money"), None)


def owner_field(ent: Entity) -> Field | None:
    """Whose a card is: the entity's first user field."""
    return next((f for f in ent.fields if f.type == "user"), None)


def stage_label(stage: Field, value, names: widgets.Names, locale: str | None = None) -> str:
    """A stage as people read it (its choice label; 'no stage' in `locale`)."""
    return widgets.text(value, stage, names) if value is not None else words.text(locale, "no stage")


def scope_of(ent: Entity, params) -> dict[str, int]:
    """The board's scope from a query string: reference and user fields of `ent` given a record or user number.

    Anything else (other parameters, numbers that are not numbers) is ignored: the whole board is a fine answer.
    """
    scope = {}
    for f in ent.fields:
        raw = str(params.get(f.name, "")).strip()
        if f.type in SCOPES and raw.isdigit() and 0 < int(raw) < 2**63:
            scope[f.name] = int(raw)
    return scope


def board(conn: sa.Connection, compiled: CompiledModel, ent: Entity, zone, scope: dict[str, int] | None = None,
          locale: str | None = None) -> Board:
    """The board of `ent` (within `scope`): a column per stage with its first cards, how many there are and what they are
    worth; its own words in `locale`."""
    stage = stage_field(ent)
    assert stage is not None, "only entities with stages have a board"
    value, owner = value_field(ent), owner_field(ent)
    scope = dict(scope or {})
    names = widgets.Names(conn, compiled, zone)
    fields = {f.name: f for f in ent.fields}
    names.prefetch([fields[k] for k in scope], [scope])
    scope_text = words.text(locale, " and ").join(words.text(locale, "%(field)s is %(value)s", field=in_sentence(locale, fields[k].label),
                                                             value=widgets.text(v, fields[k], names)) for k, v in scope.items())
    counts, totals = _tallies(conn, compiled, ent, stage, value, scope)
    pages = {c.value: records.search_records(conn, compiled, ent.name, {**scope, stage.name: c.value},
                                             sort=[f"-{value.name}", "title"] if value else "title", page_size=CARDS_SHOWN)
             for c in stage.choices}
    shown = [r for p in pages.values() for r in p.items]
    names.prefetch([f for f in (value, owner) if f], [r.data for r in shown])
    columns = []
    for c in stage.choices:
        cards = [Card(id=r.id, title=r.title or words.text(locale, "%(thing)s without a name", thing=ent.label), row_version=r.row_version,
                      value=widgets.html(r.data.get(value.name), value, names) if value else Markup(""),
                      owner=widgets.text(r.data.get(owner.name), owner, names) if owner and r.data.get(owner.name) else "",
                      stage=c.value) for r in pages[c.value].items]
        count = counts.get(c.value, 0)
        columns.append(Column(value=c.value, label=c.label, cards=cards, count=count,
                              total=widgets.text(totals.get(c.value, Decimal(0)), value, names) if value else "",
                              more_url=directory_url(ent.name, stage.name, c.value) if count > len(cards) else None))
    return Board(entity=ent, stage=stage, value=value, owner=owner, columns=columns, scope=scope, scope_text=scope_text)


def _tallies(conn: sa.Connection, compiled: CompiledModel, ent: Entity, stage: Field, value: Field | None,
             scope: dict[str, int]) -> tuple[dict[str, int], dict[str, Decimal]]:
    """How many records each stage holds, and the sum of their values, in one grouped query."""
    table = compiled.metadata.tables[ent.name]
    by_stage = records.field_expression(table, stage)
    fields = {f.name: f for f in ent.fields}
    where = [records.field_expression(table, fields[k]) == v for k, v in scope.items()]
    columns = [by_stage, sa.func.count()]
    if value is not None:
        amount = records.field_expression(table, value)
        # amounts in `data` are text: summed as numbers, not concatenated or compared as text
        columns.append(sa.func.sum(amount if is_column(value) else sa.cast(amount, sa.Numeric(18, 2))))
    counts, totals = {}, {}
    for row in conn.execute(sa.select(*columns).where(sa.true(), *where).group_by(by_stage)):
        counts[row[0]] = row[1]
        if value is not None:
            totals[row[0]] = Decimal(str(row[2] or 0)).quantize(Decimal("0.01"))
    return counts, totals


def move(conn: sa.Connection, compiled: CompiledModel, ent: Entity, record_id: int, to: str, expected_version: int,
         user_id: int | None) -> tuple[records.Record, str]:
    """Move a record to stage `to` as the change of version `expected_version`; (the record, the stage it left).

    Raises NotAStage, records.Conflict (changed since), records.RecordInvalid (the move breaks a rule of the entity).
    """
    stage = stage_field(ent)
    assert stage is not None, "only entities with stages have a board"
    if to not in {c.value for c in stage.choices}:
        raise NotAStage(f"'{to}' is not a stage of the {ent.label.lower()} board")
    before = records.get_record(conn, compiled, ent.name, record_id).data.get(stage.name)
    names = widgets.Names(conn, compiled)
    summary = f"Moved on the pipeline board: {stage_label(stage, before, names)} → {stage_label(stage, to, names)}"
    rec = records.update_record(conn, compiled, ent.name, record_id, {stage.name: to}, user_id,
                                expected_version=expected_version, history=summary)
    return rec, before
