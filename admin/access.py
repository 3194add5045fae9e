"""Who may do what: role permissions from the definitions, API tokens."""
from __future__ import annotations

import hashlib
import secrets

from engine.model import Model


def permissions_of(model: Model, user: dict) -> set[str]:
    """Every permission the user's roles grant (admin implies all)."""
    return {p for r in user.get("roles") or [] if r in model.roles for p in model.roles[r].permissions}


def allowed(model: Model, user: dict, permission: str) -> bool:
    perms = permissions_of(model, user)
    return permission in perms or "admin" in perms


def new_token() -> tuple[str, str]:
    """(token to show once, hash to store): tokens are long random secrets, so a fast hash is enough."""
    token = "tl_" + secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
