"""An index on users.api_token_hash: every API request finds its user by the token's digest.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""
from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_users_api_token_hash", "users", ["api_token_hash"])


def downgrade() -> None:
    op.drop_index("ix_users_api_token_hash", table_name="users")
