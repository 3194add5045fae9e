"""How a value looks and is typed: one registered widget per field type.

Every page, the CSV export, mail merge and email messages ask this registry, so a value
looks the same everywhere: a reference is the record's title (a link on pages), a user their
name, a choice its label, money with its currency, dates and times in the viewer's time zone.

A widget knows three things about its field type:
- `input`: which input a page shows (the engine's `FieldType.widget`: text, textarea, select, ...);
- `parse(text, field)`: the typed value of what someone typed (raising `values.NotConvertible`);
- `text(value, field, names)`: the display text of a stored value; `html(...)` the same for a page.

`Names` resolves ids to names and titles in batches, once per page, so a table of 50 rows is a
handful of queries, not 50.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import babel
import sqlalchemy as sa
from babel.dates import format_skeleton
from markupsafe import Markup, escape

from engine import fieldtypes, labels
from engine.compiler import CompiledModel
from engine.model import Field, Model
from runtime import values as V
from runtime import words
from runtime.schema import users

_WIDGETS: dict[str, Widget] = {}
CURRENCY_SIGNS = {"GBP": "£", "EUR": "€", "USD": "$", "JPY": "¥", "CHF": "CHF "}
UTC = dt.timezone.utc


def widget(type_name: str) -> Callable[[type[Widget]], type[Widget]]:
    """Register the widget of field type `type_name`; a type registers once."""

    def register(cls: type[Widget]) -> type[Widget]:
        if type_name in _WIDGETS:
            raise ValueError(f"the widget of {type_name!r} is already registered")
        _WIDGETS[type_name] = cls(type_name)
        return cls

    return register


def get(type_name: str) -> Widget:
    """The widget of a field type (record fields of unknown types show as text)."""
    return _WIDGETS.get(type_name) or _WIDGETS["string"]


# -- who is looking, and the names of what values point at ---------------------------------


def organisation_zone(model: Model) -> ZoneInfo:
    """The organisation's time zone: that of the first calendar the packs declare (UTC without one)."""
    for calendar in model.calendars.values():
        try:
            return ZoneInfo(calendar.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return ZoneInfo("UTC")


def zone_of(model: Model, user: dict | None) -> ZoneInfo:
    """The viewer's time zone: their own choice, else the organisation's."""
    chosen = (user or {}).get("time_zone")
    if chosen:
        try:
            return ZoneInfo(chosen)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return organisation_zone(model)


def locale_of(model: Model, user: dict | None, accepted: Iterable[str] = ()) -> str:
    """The language the viewer reads labels in: their own choice, else the first of `accepted` (the browser's languages,
    most wanted first) the packs translate into, else the definitions' own (engine.labels)."""
    return labels.pick(model, [(user or {}).get("locale"), *accepted])


@dataclass
class Names:
    """Titles of records and names of users, looked up in batches and remembered for one page or export."""

    conn: sa.Connection | None
    compiled: CompiledModel
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    _titles: dict[tuple[str, int], str] = field(default_factory=dict)
    _users: dict[int, str] = field(default_factory=dict)

    def prefetch(self, fields: Iterable[Field], rows: Iterable[dict]) -> None:
        """Look up at once every record and user the `fields` of `rows` (dicts of values) point at."""
        rows = list(rows)
        wanted_users: set[int] = set()
        wanted: dict[str, set[int]] = {}
        for f in fields:
            for row in rows:
                for v in _as_list(row.get(f.name)):
                    if isinstance(v, int) and not isinstance(v, bool):
                        if f.type == "user":
                            wanted_users.add(v)
                        elif f.type == "reference" and f.entity:
                            wanted.setdefault(f.entity, set()).add(v)
        self._load_users(wanted_users)
        for entity, ids in wanted.items():
            self._load_titles(entity, ids)

    def _load_users(self, ids: set[int]) -> None:
        ids = {i for i in ids if i not in self._users}
        if ids and self.conn is not None:
            self._users.update(dict(self.conn.execute(sa.select(users.c.id, users.c.name).where(users.c.id.in_(ids))).all()))
        for i in ids:
            self._users.setdefault(i, "a former user")

    def _load_titles(self, entity: str, ids: set[int]) -> None:
        ids = {i for i in ids if (entity, i) not in self._titles}
        table = self.compiled.metadata.tables.get(entity)
        if ids and table is not None and self.conn is not None:
            for rid, title in self.conn.execute(sa.select(table.c.id, table.c.title).where(table.c.id.in_(ids))).all():
                self._titles[(entity, rid)] = title or f"{self._label(entity)} without a name"
        for i in ids:
            self._titles.setdefault((entity, i), f"a deleted {self._label(entity).lower()}")

    def _label(self, entity: str) -> str:
        ent = self.compiled.model.entities.get(entity)
        return ent.label if ent else entity

    def user(self, user_id: int) -> str:
        """A user's name."""
        if user_id not in self._users:
            self._load_users({user_id})
        return self._users[user_id]

    def title(self, entity: str, record_id: int) -> str:
        """A record's title."""
        if (entity, record_id) not in self._titles:
            self._load_titles(entity, {record_id})
        return self._titles[(entity, record_id)]


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


# -- times for people --------------------------------------------------------------------


def _moment(value: dt.datetime | str) -> dt.datetime | None:
    """A stored moment as an aware datetime (the store keeps UTC; SQLite gives it back without a zone); None if unreadable."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _language(names: Names | None) -> str | None:
    """The language a page's values are shown in: the one its configuration's labels are read in (`Names.compiled`)."""
    return names.compiled.model.locale if names is not None else None


def _calendar(locale: str | None) -> babel.Locale | None:
    """The calendar words (weekdays, months) and date order of `locale`; None for English, written as it always was."""
    if not locale or locale.split("-")[0].split("_")[0].lower() == "en":
        return None
    try:
        return babel.Locale.parse(locale.replace("-", "_"))
    except (ValueError, babel.UnknownLocaleError):
        return None


def when_text(moment: dt.datetime | str | None, zone: ZoneInfo, today: dt.date | None = None, locale: str | None = None) -> str:
    """A moment as people read it in their zone: 'Thu 3 Dec, 09:00' (the year only when it is not this year); in
    `locale`'s words and order when it is another language ('Do., 3. Dez., 09:00')."""
    if moment is None or moment == "":
        return ""
    aware = _moment(moment)
    if aware is None:
        return str(moment)
    local = aware.astimezone(zone)
    today = today or dt.datetime.now(zone).date()
    calendar = _calendar(locale)
    if calendar is not None:
        return f"{format_skeleton('MMMEd' if local.year == today.year else 'yMMMEd', local, locale=calendar)}, {local:%H:%M}"
    year = f" {local.year}" if local.year != today.year else ""
    return f"{local:%a} {local.day} {local:%b}{year}, {local:%H:%M}"


def date_text(day: dt.date | str | None, today: dt.date | None = None, locale: str | None = None) -> str:
    """A date as people read it: 'Thu 3 Dec 2026' (in `locale`'s words and order: 'Do., 3. Dez. 2026')."""
    if day is None or day == "":
        return ""
    if isinstance(day, str):
        try:
            day = dt.date.fromisoformat(day)
        except ValueError:
            return day
    calendar = _calendar(locale)
    if calendar is not None:
        return format_skeleton("yMMMEd", day, locale=calendar)
    return f"{day:%a} {day.day} {day:%b %Y}"


def local_input(moment: dt.datetime | str | None, zone: ZoneInfo) -> str:
    """A stored moment as a datetime-local input shows it (the viewer's wall clock, no zone)."""
    if not moment:
        return ""
    aware = _moment(moment)
    return aware.astimezone(zone).strftime("%Y-%m-%dT%H:%M") if aware is not None else str(moment)


# -- the widgets ----------------------------------------------------------------------------


class Widget:
    """The default: text typed as it is, shown as it is."""

    type_name: str
    multiple: ClassVar[bool] = False

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name

    @property
    def input(self) -> str:
        """The input a page shows for this type."""
        return fieldtypes.get(self.type_name).widget

    def parse(self, text: Any, f: Field, zone: ZoneInfo | None = None) -> Any:
        """The typed value of what someone typed, or `V.NotConvertible` with the reason."""
        return V.convert(text.strip() if isinstance(text, str) else text, f)

    def text(self, value: Any, f: Field, names: Names) -> str:
        """The display text of a stored value ('' when empty)."""
        return "" if value is None else str(value)

    def html(self, value: Any, f: Field, names: Names) -> Markup:
        """The value on a page (escaped; links where the value points somewhere)."""
        return escape(self.text(value, f, names))

    def input_value(self, value: Any, f: Field, names: Names) -> Any:
        """A stored value as the input of an edit page shows it."""
        return "" if value is None else value


for _name in ("string", "text", "integer", "decimal", "phone"):
    widget(_name)(type(f"{_name.title()}Widget", (Widget,), {}))


@widget("email")
class EmailWidget(Widget):
    def html(self, value, f, names):
        return Markup('<a href="mailto:{0}">{0}</a>').format(value) if value else Markup("")


@widget("url")
class UrlWidget(Widget):
    def html(self, value, f, names):
        if isinstance(value, str) and value.lower().startswith(("http://", "https://")):
            return Markup('<a href="{0}" rel="noopener noreferrer">{0}</a>').format(value)
        return escape(self.text(value, f, names))


@widget("money")
class MoneyWidget(Widget):
    def parse(self, text, f, zone=None):
        if isinstance(text, str):  # people type "£12,500" or "12 500.00"
            text = text.strip().replace(",", "").replace(" ", "").lstrip("£€$")
        return super().parse(text, f, zone)

    def text(self, value, f, names):
        if value is None or value == "":
            return ""
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            return str(value)
        sign = CURRENCY_SIGNS.get(f.currency or "", f"{f.currency} " if f.currency else "")
        return f"{'-' if amount < 0 else ''}{sign}{abs(amount):,.2f}"

    def input_value(self, value, f, names):
        return "" if value is None else str(value)


@widget("boolean")
class BooleanWidget(Widget):
    def parse(self, text, f, zone=None):
        return text in ("on", "true", "1", "yes", True)

    def text(self, value, f, names):
        return "" if value is None else words.text(_language(names), "Yes" if value else "No")


@widget("date")
class DateWidget(Widget):
    def text(self, value, f, names):
        return date_text(value, locale=_language(names))

    def input_value(self, value, f, names):
        return value.isoformat() if isinstance(value, dt.date) else (value or "")


@widget("datetime")
class DateTimeWidget(Widget):
    def parse(self, text, f, zone=None):
        """A datetime-local input sends the wall clock; it is a moment in the viewer's zone."""
        if isinstance(text, str) and text.strip():
            try:
                moment = dt.datetime.fromisoformat(text.strip())
            except ValueError:
                raise V.NotConvertible("must be a date and time like 2026-12-03 09:30") from None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=zone or UTC)
            return V.convert(moment.isoformat(), f)
        return super().parse(text, f, zone)

    def text(self, value, f, names):
        return when_text(value, names.zone, locale=_language(names))

    def input_value(self, value, f, names):
        return local_input(value, names.zone)


class _Labelled(Widget):
    def label(self, value: Any, f: Field) -> str:
        for c in f.choices:
            if c.value == value:
                return c.label
        return str(value).replace("_", " ").capitalize()


@widget("choice")
class ChoiceWidget(_Labelled):
    def text(self, value, f, names):
        return "" if value is None else self.label(value, f)


@widget("multichoice")
class MultiChoiceWidget(_Labelled):
    multiple = True

    def text(self, value, f, names):
        return ", ".join(self.label(v, f) for v in _as_list(value) if v is not None) if value else ""


@widget("reference")
class ReferenceWidget(Widget):
    def text(self, value, f, names):
        return names.title(f.entity, value) if isinstance(value, int) and f.entity else ("" if value is None else str(value))

    def html(self, value, f, names):
        if isinstance(value, int) and f.entity:
            return Markup('<a href="/records/{0}/{1}">{2}</a>').format(f.entity, value, names.title(f.entity, value))
        return escape(self.text(value, f, names))


@widget("user")
class UserWidget(Widget):
    def text(self, value, f, names):
        return names.user(value) if isinstance(value, int) else ("" if value is None else str(value))


@widget("group")
class GroupWidget(Widget):
    def text(self, value, f, names):
        group = names.compiled.model.groups.get(value) if value else None
        return group.label if group else ("" if value is None else str(value))


def text(value: Any, f: Field, names: Names) -> str:
    """The display text of a value of field `f` (CSV, mail merge, emails)."""
    return get(f.type).text(value, f, names)


def html(value: Any, f: Field, names: Names) -> Markup:
    """The value of field `f` on a page."""
    return get(f.type).html(value, f, names)


def display_context(record_context: dict, fields: Iterable[Field], names: Names) -> dict:
    """A record's template context with display text in place of raw values (ids, choice values, UTC times),
    for letters and messages people read; the raw values stay under `raw`."""
    shown = dict(record_context)
    for f in fields:
        if f.name in shown and shown[f.name] is not None:
            shown[f.name] = text(shown[f.name], f, names)
    shown["raw"] = record_context
    return shown


def missing_widgets() -> set[str]:
    """Field types without a widget (a test keeps this empty)."""
    return set(fieldtypes.names()) - set(_WIDGETS)
