"""The outbox of process starts (`process_starts`), written in the transaction of the change that starts them.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# A migration is a snapshot: it spells its types out instead of importing today's runtime.schema.
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "process_starts",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("workflow_id", sa.String(400), nullable=False),
        sa.Column("process", sa.String(64), nullable=False),
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("entity", sa.String(64)),
        sa.Column("record_id", sa.BigInteger()),
        sa.Column("inputs", JSON, nullable=False),
        sa.Column("started_by", sa.BigInteger()),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("next_attempt_at", When, nullable=False),
        sa.Column("started_at", When),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text()),
        sa.PrimaryKeyConstraint("id", name="pk_process_starts"),
        sa.UniqueConstraint("workflow_id", name="uq_process_starts_workflow_id"),
    )
    op.create_index("ix_process_starts_due", "process_starts", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_table("process_starts")
