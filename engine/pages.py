"""What an entity's generated pages show: its `pages:` options, or good defaults where it says nothing.

Like Django admin's ModelAdmin options (`list_display`, `list_filter`, `search_fields`, `fieldsets`),
from the entity definition; pure functions of the model.
"""
from __future__ import annotations

from .model import Entity, Field, Model, Section

LISTABLE = frozenset({"string", "email", "phone", "url", "integer", "decimal", "money", "date", "datetime", "boolean", "choice",
                      "reference", "user", "group"})
FILTERABLE = frozenset({"choice", "multichoice", "user", "reference", "boolean", "group"})
MAX_DEFAULT_COLUMNS = 4


def navigation(model: Model) -> list[Entity]:
    """Entities listed in the main menu: customer entities first, then the others, in definition order."""
    shown = [e for e in model.entities.values() if e.pages.navigation]
    return sorted(shown, key=lambda e: not e.customer)


def columns(e: Entity) -> list[Field]:
    """The directory's default columns besides the title: as declared, else the first few listable fields."""
    by_name = {f.name: f for f in e.all_fields()}
    if e.pages.columns:
        return [by_name[n] for n in e.pages.columns if n in by_name]
    title_fields = _title_fields(e)
    return [f for f in e.fields if f.type in LISTABLE and f.name not in title_fields][:MAX_DEFAULT_COLUMNS]


def filters(e: Entity) -> list[Field]:
    """Fields offered as filters first: as declared, else every choice, user, reference and yes/no field."""
    by_name = {f.name: f for f in e.all_fields()}
    if e.pages.filters:
        return [by_name[n] for n in e.pages.filters if n in by_name]
    return [f for f in e.all_fields() if f.type in FILTERABLE]


def search_fields(e: Entity) -> tuple[str, ...]:
    """Fields the search box looks in ('title' is the record's title)."""
    return e.pages.search or ("title",)


def edit_sections(e: Entity) -> list[Section]:
    """The edit page's sections of fields for all records (each group then gets a section of its own)."""
    if e.pages.sections:
        return list(e.pages.sections)
    return [Section(e.label, tuple(f.name for f in e.fields), e.loc, 2)]


def stages(e: Entity) -> Field | None:
    """The choice field whose values are the pipeline board's columns, if the entity has a board."""
    return e.field(e.pages.stages) if e.pages.stages else None


def _title_fields(e: Entity) -> set[str]:
    """Fields the title template shows (they are in the title column already)."""
    source = e.title.source if e.title else ""
    return {f.name for f in e.fields if f"record.{f.name}" in source}
