"""Demo data for `tailor run --demo`: users, groups, records and a running process, loaded once."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from argon2 import PasswordHasher

from engine.compiler import CompiledModel
from runtime import outbox, records
from runtime.schema import group_members, idempotency_keys, users

from .demohistory import load_history

DEMO = Path(__file__).resolve().parent.parent / "definitions" / "demo" / "crm.yaml"
MARKER = "demo:crm"


def load_demo(engine: sa.Engine, compiled: CompiledModel, path: Path = DEMO) -> list[str]:
    """Insert the demo data unless it is there already; returns the workflow ids of the processes it enqueued."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        done = conn.execute(sa.select(idempotency_keys.c.result).where(idempotency_keys.c.key == MARKER)).scalar()
        if done is not None:
            return []  # loaded before: its starts are in the outbox, started then or by the drainer
        hasher = PasswordHasher()
        ids: dict[str, int] = {}
        for u in data["users"]:
            ids[u["username"]] = conn.execute(users.insert().values(
                username=u["username"], name=u["name"], email=u["email"], password_hash=hasher.hash(u["password"]),
                roles=u["roles"], created_at=now)).inserted_primary_key[0]
        for group, spec in data["groups"].items():
            for name in spec.get("members", []):
                conn.execute(group_members.insert().values(group_name=group, user_id=ids[name], manager=False))
            for name in spec.get("managers", []):
                if name in spec.get("members", []):
                    conn.execute(group_members.update().where(group_members.c.group_name == group, group_members.c.user_id == ids[name])
                                 .values(manager=True))
                else:
                    conn.execute(group_members.insert().values(group_name=group, user_id=ids[name], manager=True))
        keys: dict[str, tuple[str, int]] = {}
        starts: list[str] = []
        for entity, rows in data["records"].items():
            for row in rows:
                values: dict[str, Any] = {}
                for name, value in row.items():
                    if name == "key":
                        continue
                    f = compiled.model.entities[entity].field(name)
                    if f is not None and f.type == "user":
                        value = ids[value]
                    elif f is not None and f.type == "reference":
                        value = keys[value][1]
                    values[name] = value
                rec = records.create_record(conn, compiled, entity, values, ids["admin"], history="Created by the demo data")
                keys[row["key"]] = (entity, rec.id)
                starts += rec.starts  # what the records' triggers start
        for u in data["users"]:
            if u.get("company"):  # a customer's person: their company, and their own record in it
                conn.execute(users.update().where(users.c.id == ids[u["username"]]).values(
                    company_id=keys[u["company"]][1], person_id=keys[u["person"]][1] if u.get("person") else None))
        load_history(conn, compiled, ids, keys, now)  # what happened before: the reports' figures
        for p in data.get("processes", []):
            entity, key = p["record"].split("/")
            starts.append(outbox.enqueue(conn, p["process"], f"demo:{p['process']}:{key}", entity=entity, record_id=keys[key][1],
                                         started_by=ids[p["started_by"]]))
        conn.execute(idempotency_keys.insert().values(key=MARKER, scope="demo", result={"processes": starts}, created_at=now))
        return starts
