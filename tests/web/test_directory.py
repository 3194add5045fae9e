"""The directory and the global search as a person uses them, without a browser: filters with operators, chosen
columns, sort, pages, saved views, CSV and mail merge with display values, who may export, bad parameters."""
from __future__ import annotations

import csv
import datetime as dt
import html
import io
import re
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from admin.app import create_app
from engine.compiler import compile_model
from engine.loader import load
from forms import widgets
from runtime import records
from runtime.schema import metadata as platform, users
from tests.conftest import CRM

HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # the app verifies with the hash's own parameters


@pytest.fixture(scope="module")
def compiled():
    return compile_model(load([CRM]))


class Site:
    def __init__(self, app, engine, ids):
        self.app, self.engine, self.ids = app, engine, ids

    def client(self, who: str) -> TestClient:
        client = TestClient(self.app)
        response = client.post("/login", data={"csrf_token": token(client.get("/login").text), "username": who, "password": who},
                               follow_redirects=False)
        assert response.status_code == 303
        return client


@pytest.fixture
def site(compiled, tmp_path):
    """Ann (staff), Zed (staff, in Tokyo) and Mia (sales manager: may export); companies, people and an own field."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'directory.db'}")
    platform.create_all(engine)
    compiled.metadata.create_all(engine)
    now = dt.datetime.now(dt.timezone.utc)
    ids = {}
    with engine.begin() as conn:
        for name, full, roles, zone in [("zed", "Zed Zimmer", ["staff"], "Asia/Tokyo"), ("ann", "Ann Sales", ["staff"], None),
                                        ("mia", "Mia Manager", ["staff", "sales_manager"], None)]:
            ids[name] = conn.execute(users.insert().values(username=name, name=full, roles=roles, password_hash=HASHER.hash(name),
                                                           time_zone=zone, created_at=now)).inserted_primary_key[0]

        def company(name, **values):
            ids[name] = records.create_record(conn, compiled, "company", {"name": name, "status": "customer", **values}, None).id

        company("Bayside Clinic", industry="healthcare", owner=ids["ann"], employees=120, town="Leeds", organisation_type="gp_practice")
        company("Riverside Trust", industry="healthcare", owner=ids["zed"], employees=4000, organisation_type="nhs_trust",
                account_number="RIV0042")
        company("Corner Shop", industry="retail", owner=ids["ann"], employees=4, status="prospect")
        company("Old Mill", industry="manufacturing", status="former", employees=99)
        records.add_record_field(conn, compiled, "company", ids["Bayside Clinic"], "beds", "integer", "Beds", 120, ids["mia"])
        records.add_record_field(conn, compiled, "company", ids["Riverside Trust"], "beds", "integer", "Beds", 1000, ids["mia"])
        records.add_record_field(conn, compiled, "company", ids["Old Mill"], "beds", "integer", "Beds", 99, ids["mia"])
        records.add_record_field(conn, compiled, "company", ids["Corner Shop"], "parking", "string", "Parking", "=1+1", ids["mia"])
        ids["Jane Doe"] = records.create_record(conn, compiled, "person", {"company": ids["Bayside Clinic"], "first_name": "Jane",
                                                                          "last_name": "Doe", "email": "jane@bayside.example"}, None).id
        ids["Raj Patel"] = records.create_record(conn, compiled, "person", {"company": ids["Corner Shop"], "first_name": "Raj",
                                                                           "last_name": "Patel"}, None).id
    return Site(create_app(engine, compiled, None, secret_key="directory-secret"), engine, ids)


def token(text: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', text).group(1)


def titles(page: str) -> list[str]:
    """The records the directory's table lists, in order."""
    return [html.unescape(t) for t in re.findall(r'<th scope="row"><a href="/records/\w+/\d+">([^<]*)</a>', page)]


def headers(page: str) -> list[str]:
    head = page.split("<thead>", 1)[1].split("</thead>", 1)[0]
    return [html.unescape(re.sub(r"<[^>]+>|[▲▼]", "", h)).strip() for h in re.findall(r"<th scope=\"col\"[^>]*>(.*?)</th>", head, re.S)]


def text_of(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def rows_of(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(response.text)))


# -- filters -------------------------------------------------------------------------------------


def test_filters_read_operators_and_values_as_people_type_them(site):
    ann = site.client("ann")

    def find(**params):
        page = ann.get("/directory/company", params=params)
        assert page.status_code == 200, text_of(page.text)[:500]
        return titles(page.text)

    assert find(f1="industry", o1="eq", v1="Healthcare") == ["Bayside Clinic", "Riverside Trust"]  # the label, not the value
    assert find(f1="status", o1="in", v1="Prospect, Former customer") == ["Corner Shop", "Old Mill"]
    assert find(f1="employees", o1="gt", v1="100") == ["Bayside Clinic", "Riverside Trust"]
    assert find(f1="employees", o1="lt", v1="100") == ["Corner Shop", "Old Mill"]
    assert find(f1="owner", o1="eq", v1="zed zimmer") == ["Riverside Trust"]  # a user by name
    assert find(f1="owner", o1="empty") == ["Old Mill"]
    assert find(f1="town", o1="notempty") == ["Bayside Clinic"]
    assert find(f1="name", o1="contains", v1="SIDE") == ["Bayside Clinic", "Riverside Trust"]
    assert find(f1="created_at", o1="gt", v1="2000-01-01") == ["Bayside Clinic", "Corner Shop", "Old Mill", "Riverside Trust"]


def test_two_filters_at_once_must_both_hold(site):
    page = site.client("ann").get("/directory/company", params={"f1": "industry", "o1": "eq", "v1": "healthcare",
                                                                "f2": "owner", "o2": "eq", "v2": "Ann Sales"})
    assert titles(page.text) == ["Bayside Clinic"] and "1 found" in page.text
    # both filters come back in the form, as typed
    assert 'name="v1" value="healthcare"' in page.text and 'name="v2" value="Ann Sales"' in page.text


def test_group_fields_and_fields_of_their_own_can_be_filtered(site):
    ann = site.client("ann")
    page = ann.get("/directory/company", params={"f1": "organisation_type", "o1": "eq", "v1": "NHS trust"})
    assert titles(page.text) == ["Riverside Trust"]
    # a record's own field compares as a number when a number is typed: 99 < 100 < 120 < 1000
    page = ann.get("/directory/company", params={"f1": "record_fields.beds", "o1": "gt", "v1": "100"})
    assert titles(page.text) == ["Bayside Clinic", "Riverside Trust"]
    page = ann.get("/directory/company", params={"own": "beds"})
    assert titles(page.text) == ["Bayside Clinic", "Old Mill", "Riverside Trust"]
    assert '<option value="record_fields.beds" selected>Beds</option>' in page.text  # from here on a filter like any other


def test_any_field_with_a_value_searches_the_title_and_the_search_fields(site):
    ann = site.client("ann")
    assert titles(ann.get("/directory/company", params={"f1": "", "o1": "contains", "v1": "leeds"}).text) == ["Bayside Clinic"]
    assert titles(ann.get("/directory/company", params={"f1": "", "o1": "contains", "v1": "RIV004"}).text) == ["Riverside Trust"]
    assert titles(ann.get("/directory/company", params={"q": "corner"}).text) == ["Corner Shop"]
    people = ann.get("/directory/person", params={"f1": "", "v1": "doe"})
    assert titles(people.text) == ["Jane Doe"]


def test_a_link_from_a_record_page_names_the_record_by_id_and_the_box_shows_its_name(site):
    from admin.web.listing import directory_url

    ann = site.client("ann")
    page = ann.get(directory_url("person", "company", site.ids["Bayside Clinic"]))
    assert page.status_code == 200 and titles(page.text) == ["Jane Doe"]
    assert 'name="v1" value="Bayside Clinic"' in page.text  # the company's name, not its id
    by_name = ann.get("/directory/person", params={"f1": "company", "o1": "eq", "v1": "corner shop"})
    assert titles(by_name.text) == ["Raj Patel"]
    by_part = ann.get("/directory/person", params={"f1": "company", "o1": "contains", "v1": "side"})
    assert titles(by_part.text) == ["Jane Doe"]


# -- columns, sort, pages ------------------------------------------------------------------------


def test_default_columns_show_the_title_once_and_chosen_columns_replace_them(site):
    ann = site.client("ann")
    assert headers(ann.get("/directory/company").text) == ["Company", "Status", "Industry", "Town", "Account manager"]
    page = ann.get("/directory/company", params={"cols": "1", "col": ["owner", "employees", "record_fields.beds", "name"],
                                                 "f1": "industry", "o1": "eq", "v1": "healthcare"})
    assert headers(page.text) == ["Company", "Account manager", "Number of employees", "Beds"]
    cells = re.findall(r"<td>(.*?)</td>", page.text.split("<tbody>", 1)[1])
    assert cells[:3] == ["Ann Sales", "120", "120"] and cells[3:6] == ["Zed Zimmer", "4000", "1000"]
    assert headers(ann.get("/directory/company", params={"cols": "1"}).text) == ["Company"]  # none chosen: the title alone


def test_sorting_on_a_column_sorts_by_what_it_shows_and_the_header_turns_it_round(site):
    ann = site.client("ann")
    page = ann.get("/directory/company", params={"sort": "owner", "f1": "owner", "o1": "notempty"})
    assert titles(page.text) == ["Bayside Clinic", "Corner Shop", "Riverside Trust"]  # Ann before Zed, whatever their ids
    assert 'aria-sort="ascending"' in page.text and "sort=-owner" in page.text
    page = ann.get("/directory/company", params={"sort": "-employees"})  # numbers as numbers (4000 after 99 as text)
    assert titles(page.text) == ["Riverside Trust", "Bayside Clinic", "Old Mill", "Corner Shop"]
    page = ann.get("/directory/company", params={"sort": "-industry"})
    assert titles(page.text) == ["Corner Shop", "Old Mill", "Bayside Clinic", "Riverside Trust"]  # retail, manufacturing, healthcare
    assert re.search(r'<th scope="col" aria-sort="descending">\s*<a href="\?sort=industry">Industry', page.text)
    page = ann.get("/directory/company", params={"sort": "status"})  # choices in the definition's order: prospect, customer, former
    assert titles(page.text) == ["Corner Shop", "Bayside Clinic", "Riverside Trust", "Old Mill"]


def test_pages_show_the_right_rows_and_count_and_odd_page_numbers_get_a_message(site, compiled):
    with site.engine.begin() as conn:
        for i in range(9):
            records.create_record(conn, compiled, "company", {"name": f"Extra {i}", "status": "prospect"}, None)
    ann = site.client("ann")
    first = ann.get("/directory/company", params={"per": "10"})
    assert len(titles(first.text)) == 10 and "13 found · page 1 of 2" in text_of(first.text)
    second = ann.get("/directory/company", params={"per": "10", "page": "2"})
    assert titles(second.text) == ["Extra 8", "Old Mill", "Riverside Trust"]
    assert "13 found · page 2 of 2" in text_of(second.text)
    assert set(titles(first.text)).isdisjoint(titles(second.text))
    beyond = ann.get("/directory/company", params={"per": "10", "page": "99999"})
    assert beyond.status_code == 200 and titles(beyond.text) == titles(second.text)
    assert "only 2 pages of these companies; this is the last" in text_of(beyond.text)
    for bad in ("abc", "0", "-3", "1e9"):
        page = ann.get("/directory/company", params={"per": "10", "page": bad})
        assert page.status_code == 200 and titles(page.text) == titles(first.text), bad
        assert "is not a page number, so this is the first page" in text_of(page.text) and "invalid literal" not in page.text
    # the next link keeps the filters and the page size
    assert 'href="?per=10&amp;page=2"' in first.text


# -- saved views -----------------------------------------------------------------------------------


def test_saved_views_are_per_user_and_only_their_owner_opens_or_deletes_them(site):
    ann, zed = site.client("ann"), site.client("zed")
    page = ann.get("/directory/company", params={"f1": "industry", "o1": "eq", "v1": "healthcare", "cols": "1", "col": "owner",
                                                 "sort": "-title"})
    query = re.search(r'name="query" value="([^"]*)"', page.text).group(1)
    saved = ann.post("/directory/company/views", data={"csrf_token": token(page.text), "name": "  Health   accounts ", "query":
                                                       html.unescape(query)}, follow_redirects=False)
    assert saved.status_code == 303
    opened = ann.get(saved.headers["location"])
    assert "Saved the view “Health accounts”." in text_of(opened.text)
    link = re.search(r'href="(/directory/company/views/(\d+))"', opened.text)
    view_url, view_id = link.group(1), link.group(2)
    again = ann.get(view_url)  # opening the view is the page it was saved from
    assert titles(again.text) == ["Riverside Trust", "Bayside Clinic"] and headers(again.text) == ["Company", "Account manager"]
    assert 'aria-current="page"' in again.text and "Health accounts" in again.text

    assert "Health accounts" not in zed.get("/directory/company").text  # not in anyone else's list
    assert zed.get(view_url, follow_redirects=False).status_code == 404
    zed_page = zed.get("/directory/company")
    refused = zed.post(f"/directory/company/views/{view_id}/delete", data={"csrf_token": token(zed_page.text)})
    assert refused.status_code == 404 and "Back to My work" in refused.text
    assert ann.get(view_url, follow_redirects=False).status_code == 303  # still there

    gone = ann.post(f"/directory/company/views/{view_id}/delete", data={"csrf_token": token(again.text)})
    assert "Deleted the view “Health accounts”." in text_of(gone.text) and "Health accounts</a>" not in gone.text
    assert ann.get(view_url, follow_redirects=False).status_code == 404
    for bad in ("abc", str(2**64), "-1"):
        assert ann.get(f"/directory/company/views/{bad}", follow_redirects=False).status_code == 404


def test_a_view_needs_a_name(site):
    ann = site.client("ann")
    page = ann.get("/directory/company")
    response = ann.post("/directory/company/views", data={"csrf_token": token(page.text), "name": "   ", "query": "q=a"})
    assert response.status_code == 200 and "Give the view a name." in response.text


# -- export and mail merge -----------------------------------------------------------------------


def test_csv_shows_names_labels_local_times_and_fields_of_their_own(site, compiled):
    mia = site.client("mia")
    response = mia.get("/directory/company/export.csv", params={"sort": "title"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = {r["Company"]: r for r in rows_of(response)}
    assert list(rows) == ["Bayside Clinic", "Corner Shop", "Old Mill", "Riverside Trust"]
    bayside = rows["Bayside Clinic"]
    assert bayside["Account manager"] == "Ann Sales" and bayside["Industry"] == "Healthcare"
    assert bayside["Organisation type (Healthcare)"] == "GP practice" and bayside["Beds"] == "120"
    assert rows["Old Mill"]["Status"] == "Former customer" and rows["Old Mill"]["Account manager"] == ""
    assert rows["Corner Shop"]["Parking"] == "'=1+1" and rows["Corner Shop"]["Beds"] == ""  # formula guard on own fields too
    assert "Name" not in rows["Corner Shop"]  # the title column is the name
    with site.engine.connect() as conn:
        created = records.get_record(conn, compiled, "company", site.ids["Bayside Clinic"]).created_at
    assert bayside["Created"] == widgets.when_text(created, ZoneInfo("UTC"))
    zed = site.client("zed")
    with site.engine.begin() as conn:
        conn.execute(users.update().where(users.c.username == "zed").values(roles=["staff", "sales_manager"]))
    tokyo = {r["Company"]: r for r in rows_of(zed.get("/directory/company/export.csv"))}
    assert tokyo["Bayside Clinic"]["Created"] == widgets.when_text(created, ZoneInfo("Asia/Tokyo"))  # the viewer's time zone
    # the export is of what the directory shows: its filters apply
    filtered = rows_of(mia.get("/directory/company/export.csv", params={"f1": "record_fields.beds", "o1": "gt", "v1": "100"}))
    assert [r["Company"] for r in filtered] == ["Bayside Clinic", "Riverside Trust"]


def test_mail_merge_letters_read_names_and_labels(site):
    mia = site.client("mia")
    page = mia.get("/directory/company", params={"f1": "industry", "o1": "eq", "v1": "healthcare"})
    action = html.unescape(re.search(r'<form method="post" action="(/directory/company/merge[^"]*)"', page.text).group(1))
    letters = mia.post(action, data={"csrf_token": token(page.text),
                                     "template": "Dear {{ record.title }}, {{ record.owner }} looks after your {{ record.industry }} "
                                                 "account ({{ record.organisation_type }}, {{ record.raw.industry }})."})
    assert letters.status_code == 200
    said = text_of(letters.text)
    assert "Dear Bayside Clinic, Ann Sales looks after your Healthcare account (GP practice, healthcare)." in said
    assert "Dear Riverside Trust, Zed Zimmer looks after your Healthcare account (NHS trust, healthcare)." in said
    assert "Corner Shop" not in said and "2 letters" in said


def test_without_the_export_permission_there_is_no_export_link_and_the_address_says_not_allowed(site):
    ann = site.client("ann")
    page = ann.get("/directory/company")
    assert "export.csv" not in page.text and "/merge" not in page.text and "Mail merge" not in page.text
    refused = ann.get("/directory/company/export.csv")
    assert refused.status_code == 403 and refused.headers["content-type"].startswith("text/html")
    assert "<h1" in refused.text and "Not allowed" in refused.text and "Back to My work" in refused.text
    merge = ann.post("/directory/company/merge", data={"csrf_token": token(page.text), "template": "Dear {{ record.title }}"})
    assert merge.status_code == 403 and "Not allowed" in merge.text
    assert "export.csv" in site.client("mia").get("/directory/company").text


# -- bad parameters ----------------------------------------------------------------------------------


@pytest.mark.parametrize("params, message", [
    ({"f1": "colour", "o1": "eq", "v1": "red"}, "Companies have no field “colour”."),
    ({"f1": "name", "o1": "like", "v1": "x"}, "“like” is not a way to compare"),
    ({"f1": "industry", "o1": "contains", "v1": "health"}, "Industry cannot be compared with “contains”"),
    ({"f1": "industry", "o1": "eq", "v1": "farming"}, "Industry: “farming” is not one of its choices (Healthcare,"),
    ({"f1": "employees", "o1": "gt", "v1": "lots"}, "Number of employees: “lots”"),
    ({"f1": "created_at", "o1": "lt", "v1": "last week"}, "Created: “last week”"),
    ({"f1": "owner", "o1": "eq", "v1": "Nobody Here"}, "Account manager: nobody is called “Nobody Here”."),
    ({"f1": "", "o1": "empty"}, "“— any field —” can only be searched with “contains”"),
    ({"f1": "record_fields.Bad-Name", "o1": "eq", "v1": "x"}, "Companies have no field “record_fields.Bad-Name”."),
    ({"f1": "owner", "o1": "eq", "v1": "Ann\x00"}, "A filter must not contain a NUL character"),
    ({"sort": "colour"}, "Companies cannot be sorted by “colour”: there is no such column."),
    ({"f1": "id", "o1": "contains", "v1": "abc"}, "'id' is an integer field; 'abc' is not a value it can be compared with"),
    ({"f1": "employees", "o1": "gt", "v1": str(10**30)}, "Number of employees: “1000000000000000000000000000000” must be between"),
    ({"q": "Ann\x00"}, "What to search for must not contain a NUL character"),
])
def test_bad_filters_get_a_message_on_the_page(site, params, message):
    ann = site.client("ann")
    page = ann.get("/directory/company", params=params)
    assert page.status_code == 400 and message in text_of(page.text), text_of(page.text)[:600]
    assert 'role="alert"' in page.text and "Traceback" not in page.text
    mia = site.client("mia")
    assert mia.get("/directory/company/export.csv", params=params).status_code == 400  # the export says the same, as a page


@pytest.mark.parametrize("params, message", [
    ({"cols": "1", "col": "colour"}, "There is no column “colour” for companies; it is left out."),
    ({"per": "100000"}, ""),
])
def test_unknown_sort_or_column_is_left_out_with_a_note(site, params, message):
    page = site.client("ann").get("/directory/company", params=params)
    assert page.status_code == 200 and message in text_of(page.text) and len(titles(page.text)) == 4


def test_a_record_is_found_by_its_number_or_a_part_of_it(site):
    ann = site.client("ann")
    number = site.ids["Riverside Trust"]
    assert titles(ann.get("/directory/company", params={"f1": "id", "o1": "eq", "v1": str(number)}).text) == ["Riverside Trust"]
    found = titles(ann.get("/directory/company", params={"f1": "id", "o1": "contains", "v1": str(number)}).text)
    assert "Riverside Trust" in found


def test_an_unknown_entity_is_a_styled_not_found_page(site):
    ann = site.client("ann")
    for url in ("/directory/nosuch", "/directory/nosuch/export.csv", "/directory/nosuch/views/1"):
        response = ann.get(url, follow_redirects=False)
        assert response.status_code in (403, 404) and "<h1" in response.text, url
    assert ann.get("/directory/nosuch").status_code == 404


# -- global search ---------------------------------------------------------------------------------


def test_global_search_finds_records_of_every_kind_by_title_grouped_by_entity(site):
    ann = site.client("ann")
    page = ann.get("/search", params={"q": "pat"})
    assert page.status_code == 200
    found = re.findall(r'<h2 id="found-(\w+)">', page.text)
    assert found == ["person"]
    assert f'<a href="/records/person/{site.ids["Raj Patel"]}">Raj Patel</a>' in page.text
    page = ann.get("/search", params={"q": "side"})
    assert re.findall(r'<h2 id="found-(\w+)">', page.text) == ["company"]
    assert re.findall(r'<li><a href="/records/company/\d+">([^<]+)</a>', page.text) == ["Bayside Clinic", "Riverside Trust"]
    # a search field's exact value finds the record too (people search their email)
    assert "Jane Doe" in ann.get("/search", params={"q": "jane@bayside.example"}).text
    assert ann.get("/search", params={"q": "a\x00b"}).status_code == 200  # text no title can hold finds nothing, calmly
    nothing = ann.get("/search", params={"q": "zzzz"})
    assert "Nothing is called anything like “zzzz”." in text_of(nothing.text)
    assert ann.get("/search").status_code == 200


def test_every_staff_page_has_the_search_box_in_its_header(site):
    page = site.client("ann").get("/")
    header = page.text.split("<header", 1)[1].split("</header>", 1)[0]
    assert re.search(r'<form method="get" action="/search" role="search"', header) and 'name="q"' in header
