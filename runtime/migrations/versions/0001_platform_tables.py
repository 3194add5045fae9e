"""The platform tables: users, groups, projects, processes, tasks, alerts, history, audit.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# A migration is a snapshot: it spells its types out instead of importing today's runtime.schema.
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("username", sa.String(150), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(254)),
        sa.Column("password_hash", sa.String(200)),
        sa.Column("roles", JSON, nullable=False),
        sa.Column("company_id", sa.BigInteger()),
        sa.Column("person_id", sa.BigInteger()),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("api_token_hash", sa.String(200)),
        sa.Column("created_at", When, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("username", name="uq_users_username"),
    )
    op.create_table(
        "group_members",
        sa.Column("group_name", sa.String(64), nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("manager", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_group_members_user_id_users", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("group_name", "user_id", name="pk_group_members"),
    )
    op.create_table(
        "assignment_cursor",
        sa.Column("group_name", sa.String(64), nullable=False),
        sa.Column("last_user_id", sa.BigInteger()),
        sa.PrimaryKeyConstraint("group_name", name="pk_assignment_cursor"),
    )
    op.create_table(
        "projects",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("entity", sa.String(64)),
        sa.Column("record_id", sa.BigInteger()),
        sa.Column("manager_id", Id),
        sa.Column("status", sa.String(20), server_default="open", nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.ForeignKeyConstraint(["manager_id"], ["users.id"], name="fk_projects_manager_id_users"),
        sa.PrimaryKeyConstraint("id", name="pk_projects"),
        sa.UniqueConstraint("key", name="uq_projects_key"),
    )
    op.create_table(
        "project_members",
        sa.Column("project_id", Id, nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name="fk_project_members_project_id_projects", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_project_members_user_id_users", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("project_id", "user_id", name="pk_project_members"),
    )
    op.create_table(
        "process_instances",
        sa.Column("workflow_id", sa.String(200), nullable=False),
        sa.Column("process", sa.String(64), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("entity", sa.String(64)),
        sa.Column("record_id", sa.BigInteger()),
        sa.Column("project_id", sa.BigInteger()),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("inputs", JSON, nullable=False),
        sa.Column("started_by", sa.BigInteger()),
        sa.Column("started_at", When, nullable=False),
        sa.Column("ended_at", When),
        sa.PrimaryKeyConstraint("workflow_id", name="pk_process_instances"),
    )
    op.create_index("ix_process_instances_record", "process_instances", ["entity", "record_id"])
    op.create_table(
        "tasks",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("workflow_id", sa.String(200), nullable=False),
        sa.Column("process", sa.String(64), nullable=False),
        sa.Column("step_id", sa.String(64), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("entity", sa.String(64)),
        sa.Column("record_id", sa.BigInteger()),
        sa.Column("project_id", sa.BigInteger()),
        sa.Column("form", sa.String(64)),
        sa.Column("assignee_id", Id),
        sa.Column("group_name", sa.String(64)),
        sa.Column("approver", JSON),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("outcome", sa.String(20)),
        sa.Column("data", JSON),
        sa.Column("due_at", When),
        sa.Column("created_at", When, nullable=False),
        sa.Column("created_by", sa.BigInteger()),
        sa.Column("completed_at", When),
        sa.Column("completed_by", sa.BigInteger()),
        sa.ForeignKeyConstraint(["assignee_id"], ["users.id"], name="fk_tasks_assignee_id_users"),
        sa.PrimaryKeyConstraint("id", name="pk_tasks"),
        sa.UniqueConstraint("key", name="uq_tasks_key"),
    )
    op.create_index("ix_tasks_workflow_id", "tasks", ["workflow_id"])
    op.create_index("ix_tasks_inbox", "tasks", ["assignee_id", "status", "due_at"])
    op.create_index("ix_tasks_group", "tasks", ["group_name", "status", "due_at"])
    op.create_table(
        "alerts",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("task_id", Id),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("recipients", JSON, nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("entity", sa.String(64)),
        sa.Column("record_id", sa.BigInteger()),
        sa.Column("project_id", sa.BigInteger()),
        sa.Column("due_at", When),
        sa.Column("raised_at", When, nullable=False),
        sa.Column("emailed_at", When),
        sa.Column("acknowledged_at", When),
        sa.Column("acknowledged_by", sa.BigInteger()),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], name="fk_alerts_task_id_tasks", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
        sa.UniqueConstraint("key", name="uq_alerts_key"),
    )
    op.create_table(
        "contact_history",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(300)),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("summary", sa.String(500), nullable=False),
        sa.Column("form", sa.String(64)),
        sa.Column("data", JSON),
        sa.Column("user_id", sa.BigInteger()),
        sa.Column("occurred_at", When, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_contact_history"),
        sa.UniqueConstraint("key", name="uq_contact_history_key"),
    )
    op.create_index("ix_contact_history_record", "contact_history", ["entity", "record_id", "occurred_at"])
    op.create_table(
        "audit_log",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("user_id", sa.BigInteger()),
        sa.Column("at", When, nullable=False),
        sa.Column("before", JSON),
        sa.Column("after", JSON),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_record", "audit_log", ["entity", "record_id", "at"])
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("result", JSON, nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_idempotency_keys"),
    )
    op.create_table(
        "definition_state",
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("schema", JSON, nullable=False),
        sa.Column("fields", JSON, nullable=False),
        sa.Column("applied_at", When, nullable=False),
        sa.PrimaryKeyConstraint("entity", name="pk_definition_state"),
    )


def downgrade() -> None:
    for table in ("definition_state", "idempotency_keys", "audit_log", "contact_history", "alerts", "tasks",
                  "process_instances", "project_members", "projects", "assignment_cursor", "group_members", "users"):
        op.drop_table(table)
