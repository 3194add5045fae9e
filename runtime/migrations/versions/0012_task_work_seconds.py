"""Each task's working time, stored when it is finished: the SLA reports pick medians and percentiles of it in the
database instead of reading every task of the period to count its business hours.

`tasks.work_seconds`: seconds from created to completed, working seconds on the process's calendar where the step's
due is in business time (`runtime.metrics.WorkTime`, the calendar the due was computed with). Rows finished before
this migration keep NULL: the reports count those the way they did (`runtime.metrics.sla`), so no figure moves.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("work_seconds", sa.Float))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("work_seconds")
