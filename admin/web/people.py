"""A person record's access to Tailor, as its page shows it to administrators: the user linked to the person, if any,
or what is needed to give them access (open projects to join, a suggested user name)."""
from __future__ import annotations

import sqlalchemy as sa

from engine.compiler import CompiledModel
from runtime.schema import projects, users


def person_access(conn: sa.Connection, compiled: CompiledModel, record) -> dict:
    model = compiled.model
    row = conn.execute(sa.select(users).where(users.c.person_id == record.id)).mappings().first()
    if row is not None:
        company = compiled.metadata.tables.get("company")
        title = (conn.execute(sa.select(company.c.title).where(company.c.id == row["company_id"])).scalar()
                 if company is not None and row["company_id"] else None)
        roles = ", ".join(model.roles[r].label if r in model.roles else r for r in row["roles"] or [])
        return {"user": dict(row), "roles_text": roles or "no roles", "company": title}
    email = str(record.data.get("email") or "")
    open_projects = [dict(r) for r in conn.execute(sa.select(projects.c.id, projects.c.title).where(projects.c.status == "open")
                                                   .order_by(projects.c.title).limit(200)).mappings()]
    return {"user": None, "projects": open_projects, "suggested": email.split("@")[0].lower() if email else ""}
