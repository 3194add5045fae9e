"""An index on tasks (entity, record_id, status): a customer page lists the open tasks of the record and its related records.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""
from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_tasks_record", "tasks", ["entity", "record_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_tasks_record", table_name="tasks")
