"""Users, their access and their groups: what the console and the `tailor user` commands do, in one place.

Every change is written with its entry in the console log (who did it, to whom, and why), in the same
transaction. Passwords are argon2 hashes; a password an administrator sets or resets is shown once and must be
changed at the next login. Deactivating a user, resetting their password or revoking their token takes effect at
once: their sessions end on the server and the API refuses the old token on the next request.
"""
from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from argon2 import PasswordHasher

from engine import labels
from engine.model import Model
from runtime.schema import console_log, group_members, users

from . import sessions
from .access import new_token

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,149}$")
MAX_NAME = 200


class AccountError(Exception):
    """A change refused, with a message per form field ('' for the change as a whole)."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(errors.values()))
        self.errors = errors


@dataclass(frozen=True)
class Issued:
    """What a change hands out once: a temporary password or an API token (never stored in clear)."""

    user_id: int
    password: str | None = None
    token: str | None = None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def temporary_password() -> str:
    """A password to hand over once; its holder must choose their own at the next login."""
    return secrets.token_urlsafe(12)


def describe(row) -> str:
    return f"user {row['username']} ({row['name']})"


def get_user(conn: sa.Connection, user_id: int) -> dict:
    row = conn.execute(sa.select(users).where(users.c.id == user_id)).mappings().first() if 0 < user_id < 2**63 else None
    if row is None:
        raise AccountError({"": "There is no such user."})
    return dict(row)


def log(conn: sa.Connection, actor_id: int | None, action: str, subject: str, details: dict | None = None, reason: str = "") -> None:
    conn.execute(console_log.insert().values(at=_now(), actor_id=actor_id, action=action, subject=subject[:200], details=details,
                                             reason=reason.strip() or None))


def check_roles(model: Model, roles: list[str]) -> None:
    unknown = [r for r in roles if r not in model.roles]
    if unknown:
        raise AccountError({"roles": f"Unknown role{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}."})


def create_user(conn: sa.Connection, model: Model, hasher: PasswordHasher, *, username: str, name: str, email: str,
                roles: list[str], actor_id: int | None, company_id: int | None = None, person_id: int | None = None,
                password: str | None = None, login: bool = True, reason: str = "") -> Issued:
    """A new user; without `password`, a temporary one (returned once) that must be changed at the first login.
    `login=False`: an API-only user (an integration), who has no password at all."""
    username, name, email = username.strip().lower(), name.strip(), email.strip()
    errors: dict[str, str] = {}
    if not USERNAME.match(username):
        errors["username"] = "Use 2 to 150 lower-case letters, digits, dots, dashes, underscores or @, starting with a letter or digit."
    elif conn.execute(sa.select(users.c.id).where(users.c.username == username)).first():
        errors["username"] = f"The user name '{username}' is taken; choose another."
    if not name:
        errors["name"] = "Give the person's name."
    elif len(name) > MAX_NAME:
        errors["name"] = f"Use at most {MAX_NAME} characters."
    if email and ("@" not in email or len(email) > 254 or " " in email):
        errors["email"] = "Give an email address like name@example.com, or leave it empty."
    if not roles:
        errors["roles"] = "Choose at least one role."
    try:
        check_roles(model, roles)
    except AccountError as exc:
        errors.update(exc.errors)
    if errors:
        raise AccountError(errors)
    shown = None if password or not login else temporary_password()
    user_id = conn.execute(users.insert().values(
        username=username, name=name, email=email or None, roles=list(roles),
        password_hash=hasher.hash(password or shown) if login else None,
        company_id=company_id, person_id=person_id, must_change_password=shown is not None, created_at=_now())).inserted_primary_key[0]
    log(conn, actor_id, "user.create", f"user {username} ({name})", {"roles": list(roles), "company_id": company_id, "person_id": person_id},
        reason)
    return Issued(user_id, password=shown)


def update_user(conn: sa.Connection, model: Model, user_id: int, *, name: str, email: str, roles: list[str], actor_id: int | None) -> None:
    row = get_user(conn, user_id)
    name, email = name.strip(), email.strip()
    errors: dict[str, str] = {}
    if not name or len(name) > MAX_NAME:
        errors["name"] = "Give the person's name (at most 200 characters)."
    if email and ("@" not in email or len(email) > 254 or " " in email):
        errors["email"] = "Give an email address like name@example.com, or leave it empty."
    if not roles:
        errors["roles"] = "Choose at least one role."
    try:
        check_roles(model, roles)
    except AccountError as exc:
        errors.update(exc.errors)
    if user_id == actor_id and "admin" not in roles and "admin" in (row["roles"] or []):
        errors["roles"] = "You cannot take the admin role from yourself; ask another administrator."
    if errors:
        raise AccountError(errors)
    conn.execute(users.update().where(users.c.id == user_id).values(name=name, email=email or None, roles=list(roles)))
    log(conn, actor_id, "user.update", describe(row), {"name": [row["name"], name], "email": [row["email"], email or None],
                                                       "roles": [row["roles"], list(roles)]})


def set_language(conn: sa.Connection, model: Model, user_id: int, locale: str, *, actor_id: int | None) -> str:
    """The language `user_id` reads labels in: one of those the packs ship (engine.labels.languages), '' for their
    browser's; a change goes into the console log with the languages' names (whether an administrator made it on the
    console or the user on their profile). Returns the language's own name ('' for the browser's)."""
    row = get_user(conn, user_id)
    offered = dict(labels.languages(model))
    locale = locale.strip()
    if locale and locale not in offered:
        raise AccountError({"locale": "Choose a language from the list."})
    shown = offered[locale] if locale else "their browser's language"
    if (row.get("locale") or "") != locale:
        conn.execute(users.update().where(users.c.id == user_id).values(locale=locale or None))
        before = offered.get(row.get("locale") or "", row.get("locale")) if row.get("locale") else "their browser's language"
        log(conn, actor_id, "user.language", describe(row), {"language": [before, shown]})
    return offered[locale] if locale else ""


def set_active(conn: sa.Connection, user_id: int, active: bool, *, actor_id: int | None, reason: str = "") -> None:
    """Deactivate (their sessions end at once, they are handed no more tasks) or reactivate a user."""
    row = get_user(conn, user_id)
    if not active and user_id == actor_id:
        raise AccountError({"": "You cannot deactivate yourself; ask another administrator."})
    if not active and not reason.strip():
        raise AccountError({"reason": "Say why (it goes into the console log)."})
    conn.execute(users.update().where(users.c.id == user_id).values(active=active))
    if not active:
        sessions.revoke_all(conn, user_id)
    log(conn, actor_id, "user.reactivate" if active else "user.deactivate", describe(row), None, reason)


def reset_password(conn: sa.Connection, hasher: PasswordHasher, user_id: int, *, actor_id: int | None, reason: str = "") -> Issued:
    """A temporary password, shown once; the user must change it at the next login, and their sessions end now."""
    row = get_user(conn, user_id)
    shown = temporary_password()
    conn.execute(users.update().where(users.c.id == user_id).values(password_hash=hasher.hash(shown), must_change_password=True))
    sessions.revoke_all(conn, user_id)
    log(conn, actor_id, "user.reset_password", describe(row), None, reason)
    return Issued(user_id, password=shown)


def issue_token(conn: sa.Connection, user_id: int, *, actor_id: int | None, reason: str = "") -> Issued:
    """A new API token for the user (shown once); it replaces the one they had, which stops working at once."""
    row = get_user(conn, user_id)
    token, digest = new_token()
    conn.execute(users.update().where(users.c.id == user_id).values(api_token_hash=digest))
    log(conn, actor_id, "user.issue_token", describe(row), {"replaced": row["api_token_hash"] is not None}, reason)
    return Issued(user_id, token=token)


def revoke_token(conn: sa.Connection, user_id: int, *, actor_id: int | None, reason: str = "") -> None:
    row = get_user(conn, user_id)
    if row["api_token_hash"] is None:
        raise AccountError({"": f"{row['name']} has no API token."})
    conn.execute(users.update().where(users.c.id == user_id).values(api_token_hash=None))
    log(conn, actor_id, "user.revoke_token", describe(row), None, reason)


# -- groups ---------------------------------------------------------------------------------------
def check_group(model: Model, group: str) -> None:
    if group not in model.groups:
        raise AccountError({"": "There is no such group."})


def add_member(conn: sa.Connection, model: Model, group: str, user_id: int, *, manager: bool, actor_id: int | None) -> None:
    """Put a user in a group (as a member or its manager); adding someone already there changes their part."""
    check_group(model, group)
    row = get_user(conn, user_id)
    if not row["active"]:
        raise AccountError({"user": f"{row['name']} is deactivated; reactivate them first."})
    if row["company_id"] is not None:
        raise AccountError({"user": f"{row['name']} is a customer's portal user and cannot join a team."})
    there = conn.execute(sa.select(group_members.c.manager).where(group_members.c.group_name == group,
                                                                  group_members.c.user_id == user_id)).first()
    if there is None:
        conn.execute(group_members.insert().values(group_name=group, user_id=user_id, manager=manager))
    else:
        conn.execute(group_members.update().where(group_members.c.group_name == group, group_members.c.user_id == user_id)
                     .values(manager=manager))
    log(conn, actor_id, "group.add_manager" if manager else "group.add_member", f"group {group}: {describe(row)}")


def remove_member(conn: sa.Connection, model: Model, group: str, user_id: int, *, actor_id: int | None) -> None:
    check_group(model, group)
    row = get_user(conn, user_id)
    gone = conn.execute(group_members.delete().where(group_members.c.group_name == group, group_members.c.user_id == user_id)).rowcount
    if not gone:
        raise AccountError({"": f"{row['name']} is not in this group."})
    log(conn, actor_id, "group.remove_member", f"group {group}: {describe(row)}")
