"""Search benchmark: the global search over 100,000 companies and 300,000 people on SQLite, next to bare SQL.

Each query is the prefix of a surname, typed in lower case, as people look someone up. Measured in one run,
query by query in turn:

1. GET /search?q=… through the whole app in this process (Starlette TestClient: session lookup, every entity in
   the navigation searched by `records.quick_search`, the page rendered);
2. the search alone: `records.quick_search` for every entity in the navigation, as the route calls it;
3. the bare baseline: `SELECT id, title FROM <entity> WHERE title LIKE ? ORDER BY title LIMIT 9` on every entity
   table, through the sqlite3 module on the same file;
4. for information, the people directory's search box (`/directory/person?q=…`: title and search fields, counted).

Prints a table and rewrites this benchmark's section of docs/benchmarks.md.

    .venv/bin/python bench/search_bench.py [--quick] [--no-write]
"""
from __future__ import annotations

import argparse
import datetime as dt
import random
import re
import shutil
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # runnable from a checkout without `pip install -e .`

import sqlalchemy as sa  # noqa: E402
from argon2 import PasswordHasher  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from admin.app import create_app  # noqa: E402
from admin.web.routes.search import PER_ENTITY  # noqa: E402
from engine import pages  # noqa: E402
from engine.compiler import CompiledModel, compile_model  # noqa: E402
from engine.loader import load  # noqa: E402
from runtime import records  # noqa: E402
from runtime.db import make_engine, upgrade  # noqa: E402
from runtime.plan import apply, plan  # noqa: E402
from runtime.schema import users  # noqa: E402

from report import code_state, load_average, machine_basics, write_section  # noqa: E402

DOCS = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- search-bench:start -->", "<!-- search-bench:end -->"
CRM = ROOT / "definitions" / "crm"
GOAL_P95 = 0.100
BATCH = 20_000
FIRST = ["Olivia", "Amelia", "Isla", "Ava", "Mia", "Ivy", "Lily", "Rosie", "Sophia", "Grace", "Freya", "Ella", "Evie", "Poppy",
         "Noah", "Oliver", "George", "Leo", "Arthur", "Muhammad", "Oscar", "Harry", "Jack", "Henry", "Theo", "Freddie", "Alfie",
         "Priya", "Aisha", "Chen", "Kwame", "Sanjay", "Fatima", "Mateo", "Yusuf", "Zara", "Ines", "Tomasz", "Anya", "Kofi"]
SYLLABLES = ["ab", "ad", "al", "an", "ar", "ba", "be", "bri", "ca", "cha", "co", "da", "de", "dun", "el", "er", "fa", "fer", "ga",
             "gor", "ha", "hol", "in", "ja", "ka", "kin", "la", "lin", "lo", "ma", "mer", "mo", "na", "nor", "o", "pa", "per",
             "ra", "ren", "ri", "sa", "sen", "son", "ta", "ter", "thor", "to", "va", "ver", "wat", "wel", "win", "ya", "zo"]


@dataclass(frozen=True)
class Sizes:
    companies: int
    people: int
    surnames: int
    queries: int
    directory_queries: int


FULL = Sizes(companies=100_000, people=300_000, surnames=20_000, queries=300, directory_queries=40)
QUICK = Sizes(companies=10_000, people=30_000, surnames=4_000, queries=100, directory_queries=20)
T0 = time.perf_counter()


def say(text: str) -> None:
    print(f"{time.perf_counter() - T0:6.1f}s {text}", flush=True)


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, -(-len(ordered) * p // 100) - 1))] if ordered else 0.0


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def summary(values: list[float]) -> dict[str, float]:
    return {"p50": pct(values, 50), "p95": pct(values, 95), "max": max(values), "n": len(values)}


# -- the database ---------------------------------------------------------------------------------


def surnames(n: int, rng: random.Random) -> list[str]:
    """n distinct made-up surnames of 2-4 syllables (a fixed seed: every run searches the same names)."""
    out: dict[str, None] = {}
    while len(out) < n:
        out["".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))).capitalize()] = None
    return list(out)


def seed(engine: sa.Engine, compiled: CompiledModel, sizes: Sizes, names: list[str], rng: random.Random) -> dict:
    """A staff user, then companies and people (the first of each through create_record, the rest in bulk)."""
    now = dt.datetime.now(dt.timezone.utc)
    company, person = compiled.metadata.tables["company"], compiled.metadata.tables["person"]
    # surnames as they occur: a few common, a long tail of rare ones (Zipf-like weights)
    weights = [1 / (rank + 1) for rank in range(len(names))]
    with engine.begin() as conn:
        user = conn.execute(users.insert().values(username="bench", name="Bench User", roles=["staff"], created_at=now,
                                                  password_hash=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash("bench"))
                            ).inserted_primary_key[0]
        first_company = records.create_record(conn, compiled, "company", {"name": "Company 000000", "status": "customer"}, user)
        first_person = records.create_record(conn, compiled, "person", {"company": first_company.id, "first_name": "Olivia",
                                                                        "last_name": names[0], "email": email("Olivia", names[0], 0)}, user)
        stored = conn.execute(sa.select(person.c.data).where(person.c.id == first_person.id)).scalar_one()
        assert stored == person_data("Olivia", names[0], 0), stored
        for table in (company, person):
            for ix in table.indexes:  # building them once afterwards is much faster than updating each on every insert
                ix.drop(conn)
    t0 = time.perf_counter()
    with engine.begin() as conn:
        for start in range(1, sizes.companies, BATCH):
            conn.execute(company.insert(), [{"title": f"Company {i:06d}", "data": {"name": f"Company {i:06d}", "status": "customer",
                                                                                   "country": "United Kingdom"},
                                             "record_fields": {}, "row_version": 1, "created_at": now, "updated_at": now}
                                            for i in range(start, min(sizes.companies, start + BATCH))])
        for start in range(1, sizes.people, BATCH):
            chunk = []
            for i, surname in enumerate(rng.choices(names, weights, k=min(sizes.people, start + BATCH) - start), start):
                first = rng.choice(FIRST)
                chunk.append({"title": f"{first} {surname}", "company": rng.randint(1, sizes.companies),
                              "data": person_data(first, surname, i), "record_fields": {}, "row_version": 1, "created_at": now,
                              "updated_at": now})
            conn.execute(person.insert(), chunk)
        for table in (company, person):
            for ix in table.indexes:
                ix.create(conn)
        conn.exec_driver_sql("ANALYZE")
    return {"user": user, "seconds": time.perf_counter() - t0}


def email(first: str, last: str, i: int) -> str:
    return f"{first}.{last}.{i}@example.com".lower()


def person_data(first: str, last: str, i: int) -> dict:
    """What create_record stores in `data` for person i with these names (the company is a column of its own)."""
    return {"first_name": first, "last_name": last, "email": email(first, last, i), "portal_access": "none"}


# -- the measurements --------------------------------------------------------------------------------


def log_in(client: TestClient) -> None:
    page = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    response = client.post("/login", data={"csrf_token": csrf, "username": "bench", "password": "bench"}, follow_redirects=False)
    assert response.status_code == 303, response.text[:300]


def measure(engine: sa.Engine, compiled: CompiledModel, db_path: Path, queries: list[str], directory_queries: list[str]) -> dict:
    app = create_app(engine, compiled, None, secret_key="search-bench")
    client = TestClient(app)
    log_in(client)
    shown = [e.name for e in pages.navigation(compiled.model)]
    bare = sqlite3.connect(str(db_path))
    bare_sql = [f"SELECT id, title FROM \"{name}\" WHERE title LIKE ? ESCAPE '\\' ORDER BY title LIMIT {PER_ENTITY + 1}"
                for name in shown]

    def per_entity(q: str) -> list[int]:
        with engine.connect() as conn:
            return [len(records.quick_search(conn, compiled, e, q, limit=PER_ENTITY + 1,
                                             exact=pages.search_fields(compiled.model.entities[e]))) for e in shown]

    def page(q: str) -> int:
        response = client.get("/search", params={"q": q})
        assert response.status_code == 200, response.text[:300]
        return response.text.count('<li><a href="/records/')

    def service(q: str) -> int:
        return sum(per_entity(q))

    def baseline(q: str) -> int:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return sum(len(bare.execute(sql, (pattern,)).fetchall()) for sql in bare_sql)

    sides = {"page": page, "service": service, "bare": baseline}
    times: dict[str, list[float]] = {k: [] for k in sides}
    people_found = []
    for q in queries[:10]:  # warm-up: caches, compiled statements
        for fn in sides.values():
            fn(q)
    for i, q in enumerate(queries):
        found: dict[str, int] = {}
        order = list(sides)[i % 3:] + list(sides)[:i % 3]  # each side goes first in turn
        for name in order:
            t0 = time.perf_counter()
            found[name] = sides[name](q)
            times[name].append(time.perf_counter() - t0)
        assert found["page"] == sum(min(n, PER_ENTITY) for n in per_entity(q)), (q, found)  # the page lists what the search found
        people_found.append(per_entity(q)[shown.index("person")])
    directory = []
    for q in directory_queries:
        t0 = time.perf_counter()
        response = client.get("/directory/person", params={"q": q})
        directory.append(time.perf_counter() - t0)
        assert response.status_code == 200, response.text[:300]
    bare.close()
    few = sum(1 for n in people_found if n <= PER_ENTITY)
    return {**{k: summary(v) for k, v in times.items()}, "directory": summary(directory), "few": few, "n": len(queries)}


# -- the report --------------------------------------------------------------------------------------


def rows(res: dict, sizes: Sizes) -> list[tuple[str, str, str, str]]:
    page, service, bare = res["page"], res["service"], res["bare"]
    fig = lambda s: f"p50 {ms(s['p50'])}, p95 {ms(s['p95'])}, max {ms(s['max'])}"  # noqa: E731
    return [
        (f"GET /search?q=<surname prefix>, {sizes.companies:,} companies + {sizes.people:,} people", fig(page), "p95 ≤ 100 ms",
         "met" if page["p95"] <= GOAL_P95 else "**not met**"),
        ("  the search alone (records.quick_search, every entity in the navigation)", fig(service), "", ""),
        ("  bare SQL `SELECT id, title … WHERE title LIKE ? ORDER BY title LIMIT 9`, every entity table", fig(bare),
         "", f"page p95 {page['p95'] / bare['p95']:.1f}× bare"),
        ("GET /directory/person?q=<surname prefix> (information: title and search fields, counted)", fig(res["directory"]), "", ""),
    ]


def markdown(res: dict, sizes: Sizes, quick: bool, info: dict[str, str], when: str, elapsed: float, seeded: dict) -> str:
    lines = [START, "## Search benchmark", "",
             "The global search in the header (`/search`) over the title of every entity in the navigation, on a SQLite file, "
             "next to bare SQL on the same file in the same run, measured by `bench/search_bench.py`"
             + (" **with `--quick`** (smaller sizes; run it without for the issue's sizes)" if quick else "") + ".",
             "", "| measure | figure | goal | |", "| --- | --- | --- | --- |"]
    lines += [f"| {m.strip()} | {f} | {g} | {ok} |" for m, f, g, ok in rows(res, sizes)]
    lines += ["", "### How each figure is measured", "",
              f"- **Data.** The CRM pack, migrated with `tailor migrate`'s plan (so the title index `ix_ENTITY_title` is there); "
              f"{sizes.companies:,} companies and {sizes.people:,} people, the first of each through `records.create_record` (its "
              f"stored `data` checked), the rest bulk-inserted in {seeded['seconds']:.1f} s with the indexes built afterwards, then "
              f"`ANALYZE`. People are named from {len(FIRST)} first names and {sizes.surnames:,} made-up surnames drawn with "
              f"Zipf-like weights (a few common surnames, a long tail of rare ones), with a fixed seed; each has an email "
              f"address.",
              f"- **Queries.** {res['n']} surnames picked uniformly from the list (so mostly rare ones), each cut to its first 3 to 6 "
              f"letters and typed in lower case. {res['few']} of the {res['n']} find at most {PER_ENTITY} people, so the search reads "
              f"the whole title index of people for them (title search is `contains`: a surname is not where a title starts); "
              f"the others stop after the first {PER_ENTITY + 1} matches in title order. Every query reads the whole title "
              f"index of companies (no company is named like a surname) and looks the text up in the indexed search fields "
              f"it could be a value of (people's `last_name`, companies' `name`).",
              "- **Sides.** One after another per query, each side first in turn, after 10 warm-up queries: the page through "
              "Starlette's TestClient in this process (one logged-in session; session lookup, 8 entities searched, the HTML "
              "rendered); the same `records.quick_search` calls without HTTP; and the bare SQL through the sqlite3 module on its "
              "own connection. Nearest-rank percentiles of wall time.",
              f"- **The directory's search box** on people ({res['directory']['n']} queries) is shown for information: it also "
              "looks in the people's search fields inside `data` and counts the matches, so it reads the table, not the index.",
              "", f"Measured {when} in {elapsed / 60:.1f} min on:", ""]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    lines += ["", "Run it again with `.venv/bin/python bench/search_bench.py` (`--quick` for smaller sizes) — it rewrites this "
              "section.", END, ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="10,000 companies and 30,000 people, fewer queries")
    ap.add_argument("--no-write", action="store_true", help="print the table only; leave docs/benchmarks.md alone")
    args = ap.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    began = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="tailor-search-bench-"))
    try:
        db_path = tmp / "tailor.db"
        engine = make_engine(f"sqlite:///{db_path}")
        compiled = compile_model(load([CRM]))
        with engine.begin() as conn:
            upgrade(conn)
            apply(conn, compiled, plan(conn, compiled))
        rng = random.Random(20261202)
        names = surnames(sizes.surnames, rng)
        say(f"seeding {sizes.companies:,} companies and {sizes.people:,} people ...")
        seeded = seed(engine, compiled, sizes, names, rng)
        queries = [rng.choice(names)[:rng.randint(3, 6)].lower() for _ in range(sizes.queries)]
        say(f"seeded in {seeded['seconds']:.1f} s; {len(queries)} searches ...")
        res = measure(engine, compiled, db_path, queries, queries[:sizes.directory_queries])
        engine.dispose()
        for m, f, g, ok in rows(res, sizes):
            print(f"{m:110s} {f:45s} {g:14s} {ok}")
        if not args.no_write:
            info = {**machine_basics(),
                    "libraries": f"SQLAlchemy {metadata.version('sqlalchemy')}, SQLite {sqlite3.sqlite_version}, "
                                 f"FastAPI {metadata.version('fastapi')}, Jinja2 {metadata.version('jinja2')}",
                    "engine": code_state(("engine", "runtime", "admin", "forms")),
                    "load average": load_average(": other work on the machine slows every figure")}
            when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
            write_section(DOCS, START, END, markdown(res, sizes, args.quick, info, when, time.perf_counter() - began, seeded))
            say(f"wrote {DOCS.relative_to(ROOT)}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
