"""A task's title in every language the packs translate into (tasks.titles: {locale: title}), rendered when the task
is made from its step's translated title; a task made before keeps its one title (tasks.title) for every reader.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("titles", JSON))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("titles")
