"""Indexes the reports' queries need: tasks done in a period and open tasks by due time (SLA, workload), alerts by
when they were raised (breaches by escalation level), contact history by when it happened (activity per customer),
an entity's changes by when they were made (the pipeline's stays and closes in a period).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""
from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_tasks_done", "tasks", ["status", "completed_at"])
    op.create_index("ix_tasks_due", "tasks", ["status", "due_at"])
    op.create_index("ix_alerts_raised", "alerts", ["raised_at"])
    op.create_index("ix_contact_history_occurred", "contact_history", ["occurred_at"])
    op.create_index("ix_audit_log_entity_at", "audit_log", ["entity", "at"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_entity_at", table_name="audit_log")
    op.drop_index("ix_contact_history_occurred", table_name="contact_history")
    op.drop_index("ix_alerts_raised", table_name="alerts")
    op.drop_index("ix_tasks_due", table_name="tasks")
    op.drop_index("ix_tasks_done", table_name="tasks")
