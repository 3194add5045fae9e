"""The field-widget registry: every field type has a widget, and values read as people expect."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from engine.compiler import compile_model
from engine.errors import Loc
from engine.loader import load
from engine.model import Choice, Field
from forms import widgets
from runtime import records, values as V
from runtime.schema import metadata as platform, users
from tests.conftest import CRM

LONDON = ZoneInfo("Europe/London")


@pytest.fixture(scope="module")
def compiled():
    return compile_model(load([CRM]))


@pytest.fixture
def names(compiled, tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    platform.create_all(engine)
    compiled.metadata.create_all(engine)
    with engine.begin() as conn:
        uid = conn.execute(users.insert().values(username="ann", name="Ann Sales", roles=["staff"],
                                                 created_at=dt.datetime.now(dt.timezone.utc))).inserted_primary_key[0]
        company = records.create_record(conn, compiled, "company", {"name": "Acme Health", "status": "customer"}, None).id
    conn = engine.connect()
    yield widgets.Names(conn, compiled, LONDON), uid, company
    conn.close()


def test_every_field_type_has_a_widget():
    assert widgets.missing_widgets() == set()


def test_references_users_choices_and_money_read_as_names_labels_and_amounts(compiled, names):
    n, uid, company = names
    opp = compiled.model.entities["opportunity"]
    assert widgets.text(company, opp.field("company"), n) == "Acme Health"
    assert str(widgets.html(company, opp.field("company"), n)) == f'<a href="/records/company/{company}">Acme Health</a>'
    assert widgets.text(uid, opp.field("owner"), n) == "Ann Sales"
    assert widgets.text("won", opp.field("stage"), n) == "Closed – won"
    assert widgets.text("qualified", opp.field("stage"), n) == "Qualified"
    assert widgets.text("12500.00", opp.field("value"), n) == "£12,500.00"
    assert widgets.text(987654, opp.field("company"), n) == "a deleted company"


def test_times_are_in_the_viewers_zone_and_formatted_for_people(names):
    n, _, _ = names
    moment = dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.timezone.utc)
    assert widgets.when_text(moment, LONDON, today=dt.date(2026, 12, 1)) == "Thu 3 Dec, 09:00"
    assert widgets.when_text(moment, ZoneInfo("America/New_York"), today=dt.date(2026, 12, 1)) == "Thu 3 Dec, 04:00"
    assert widgets.when_text(moment, LONDON, today=dt.date(2027, 1, 5)) == "Thu 3 Dec 2026, 09:00"
    summer = dt.datetime(2026, 7, 1, 8, 0, tzinfo=dt.timezone.utc)
    assert widgets.when_text(summer, LONDON, today=dt.date(2026, 12, 1)) == "Wed 1 Jul, 09:00"


def test_a_typed_local_time_is_a_moment_in_the_viewers_zone():
    f = Field("meeting", "datetime", Loc("t"), "Meeting")
    stored = widgets.get("datetime").parse("2026-07-01T09:00", f, LONDON)
    assert dt.datetime.fromisoformat(stored) == dt.datetime(2026, 7, 1, 8, 0, tzinfo=dt.timezone.utc)
    with pytest.raises(V.NotConvertible):
        widgets.get("datetime").parse("yesterday", f, LONDON)


def test_money_accepts_what_people_type():
    f = Field("budget", "money", Loc("t"), "Budget", currency="GBP")
    assert widgets.get("money").parse("£12,500", f) == V.convert("12500", f)


def test_an_unknown_choice_value_still_reads_as_words():
    f = Field("kind", "choice", Loc("t"), "Kind", choices=(Choice("existing_customer", "Existing customer"),))
    assert widgets.text("existing_customer", f, widgets.Names(None, None)) == "Existing customer"
    assert widgets.text("other_thing", f, widgets.Names(None, None)) == "Other thing"
