"""User administration: a reset password must be changed at the next login (users.must_change_password), and the
console's log of what administrators did (console_log).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("must_change_password", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_table(
        "console_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.BigInteger),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("details", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")),
        sa.Column("reason", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_console_log"),
    )
    op.create_index("ix_console_log_at", "console_log", ["at"])


def downgrade() -> None:
    op.drop_index("ix_console_log_at", table_name="console_log")
    op.drop_table("console_log")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("must_change_password")
