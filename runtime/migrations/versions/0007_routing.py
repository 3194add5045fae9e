"""Work routing: approval tasks (kind, round, subject, reason), why a task went to a fallback (routed),
in-app notifications, and contact-history entries the customer's portal users see (public replies).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("kind", sa.String(20), nullable=False, server_default="task"))
        batch.add_column(sa.Column("round", sa.Integer, nullable=False, server_default="1"))
        batch.add_column(sa.Column("subject", JSON))
        batch.add_column(sa.Column("reason", sa.Text))
        batch.add_column(sa.Column("routed", sa.Text))
    with op.batch_alter_table("contact_history") as batch:
        batch.add_column(sa.Column("public", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_table(
        "notifications",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("text", sa.String(500), nullable=False),
        sa.Column("link", sa.String(500)),
        sa.Column("created_at", When, nullable=False),
        sa.Column("read_at", When),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_notifications_user_id_users", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_notifications"),
        sa.UniqueConstraint("key", name="uq_notifications_key"),
    )
    op.create_index("ix_notifications_user_unread", "notifications", ["user_id", "read_at"])


def downgrade() -> None:
    op.drop_index("ix_notifications_user_unread", table_name="notifications")
    op.drop_table("notifications")
    with op.batch_alter_table("contact_history") as batch:
        batch.drop_column("public")
    with op.batch_alter_table("tasks") as batch:
        for name in ("routed", "reason", "subject", "round", "kind"):
            batch.drop_column(name)
