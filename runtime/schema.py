"""The platform's own tables (users, tasks, alerts, history, ...), migrated with Alembic.

Entity tables come from the compiled model instead (see `engine.compiler`).
"""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_N_name)s", "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s", "pk": "pk_%(table_name)s",
})
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)

users = sa.Table(
    "users", metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(150), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("email", sa.String(254)),
    sa.Column("password_hash", sa.String(200)),
    sa.Column("roles", JSON, nullable=False),            # role names from the definitions
    sa.Column("company_id", sa.BigInteger),              # portal users: the one company they see
    sa.Column("person_id", sa.BigInteger),               # their personnel record, if any
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("api_token_hash", sa.String(200)),
    sa.Column("time_zone", sa.String(64)),                # IANA name the user chose; empty: the organisation's
    sa.Column("locale", sa.String(16)),                   # language of labels the user chose (engine.labels); empty: the browser's (0013)
    sa.Column("must_change_password", sa.Boolean, nullable=False, server_default=sa.false()),  # set by a reset (0008)
    sa.Column("created_at", When, nullable=False),
    sa.Index("ix_users_api_token_hash", "api_token_hash"),  # every API request finds its user by the token's digest
)

sessions = sa.Table(  # web log-ins, so logout, a password change or deactivation ends them on the server
    "sessions", metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),  # sha256 of the random id the signed cookie carries
    sa.Column("user_id", sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("created_at", When, nullable=False),
    sa.Column("expires_at", When, nullable=False),
    sa.Column("revoked_at", When),
    sa.Index("ix_sessions_user", "user_id"),
)

group_members = sa.Table(
    "group_members", metadata,
    sa.Column("group_name", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("manager", sa.Boolean, nullable=False, server_default=sa.false()),
)

assignment_cursor = sa.Table(  # round-robin position per group
    "assignment_cursor", metadata,
    sa.Column("group_name", sa.String(64), primary_key=True),
    sa.Column("last_user_id", sa.BigInteger),
)

projects = sa.Table(
    "projects", metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(200), nullable=False, unique=True),  # workflow id that opened it: no duplicates on retry
    sa.Column("title", sa.String(500), nullable=False),
    sa.Column("entity", sa.String(64)),
    sa.Column("record_id", sa.BigInteger),
    sa.Column("manager_id", sa.ForeignKey("users.id")),
    sa.Column("status", sa.String(20), nullable=False, server_default="open"),
    sa.Column("created_at", When, nullable=False),
)

project_members = sa.Table(
    "project_members", metadata,
    sa.Column("project_id", sa.ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("user_id", sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
)

process_instances = sa.Table(
    "process_instances", metadata,
    sa.Column("workflow_id", sa.String(200), primary_key=True),
    sa.Column("process", sa.String(64), nullable=False),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("entity", sa.String(64)),
    sa.Column("record_id", sa.BigInteger),
    sa.Column("project_id", sa.BigInteger),
    sa.Column("status", sa.String(20), nullable=False),  # running, completed, failed, cancelled
    sa.Column("inputs", JSON, nullable=False),
    sa.Column("started_by", sa.BigInteger),
    sa.Column("started_at", When, nullable=False),
    sa.Column("ended_at", When),
    sa.Index("ix_process_instances_record", "entity", "record_id"),
)

OPEN_STATUSES = ("open", "awaiting_approval")  # a task someone still has to act on

tasks = sa.Table(
    "tasks", metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(300), nullable=False, unique=True),  # workflow id + step: an activity retry finds its row
    sa.Column("workflow_id", sa.String(200), nullable=False, index=True),
    sa.Column("process", sa.String(64), nullable=False),
    sa.Column("step_id", sa.String(64), nullable=False),
    sa.Column("title", sa.String(500), nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("entity", sa.String(64)),
    sa.Column("record_id", sa.BigInteger),
    sa.Column("project_id", sa.BigInteger),
    sa.Column("form", sa.String(64)),
    sa.Column("assignee_id", sa.ForeignKey("users.id")),
    sa.Column("group_name", sa.String(64)),
    sa.Column("approver", JSON),                       # party that must approve, if any
    sa.Column("status", sa.String(20), nullable=False),  # open, awaiting_approval, done, rejected, skipped, cancelled
    sa.Column("outcome", sa.String(20)),
    sa.Column("data", JSON),
    sa.Column("due_at", When),
    sa.Column("created_at", When, nullable=False),
    sa.Column("created_by", sa.BigInteger),
    sa.Column("completed_at", When),
    sa.Column("completed_by", sa.BigInteger),
    # approvals and the fallback (migration 0007)
    sa.Column("kind", sa.String(20), nullable=False, server_default="task"),  # task, approval
    sa.Column("round", sa.Integer, nullable=False, server_default="1"),      # 2, 3, ...: resubmitted after a rejection
    sa.Column("subject", JSON),    # an approval's subject: {"of": step id, "task_id": the approved task, "show": [paths]}
    sa.Column("reason", sa.Text),  # an approval: why it was rejected; a task sent back: the approver's reason
    sa.Column("routed", sa.Text),  # why the task went where it did when its party named nobody (the fallback), in words
    # seconds from created to completed, working seconds where the step's due is in business time (migration 0012)
    sa.Column("work_seconds", sa.Float),
    # the title in each language the packs translate into, {locale: title}, rendered when the task was made (migration 0014);
    # None on older rows: they read `title` (engine.labels.task_title)
    sa.Column("titles", JSON),
    sa.Index("ix_tasks_inbox", "assignee_id", "status", "due_at"),
    sa.Index("ix_tasks_group", "group_name", "status", "due_at"),
    sa.Index("ix_tasks_record", "entity", "record_id", "status"),  # a customer page lists the open tasks of its records
    sa.Index("ix_tasks_done", "status", "completed_at"),  # reports: tasks completed in a period (migration 0011)
    sa.Index("ix_tasks_due", "status", "due_at"),         # reports: open tasks due in a period, overdue now
)

alerts = sa.Table(
    "alerts", metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(300), nullable=False, unique=True),  # task + escalation level: raised exactly once
    sa.Column("task_id", sa.ForeignKey("tasks.id", ondelete="CASCADE")),
    sa.Column("level", sa.Integer, nullable=False),
    sa.Column("recipients", JSON, nullable=False),     # user ids
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("entity", sa.String(64)),
    sa.Column("record_id", sa.BigInteger),
    sa.Column("project_id", sa.BigInteger),
    sa.Column("due_at", When),
    sa.Column("raised_at", When, nullable=False),
    sa.Column("emailed_at", When),
    sa.Column("acknowledged_at", When),
    sa.Column("acknowledged_by", sa.BigInteger),
    sa.Index("ix_alerts_raised", "raised_at"),  # reports: alerts raised in a period, by escalation level
)

notifications = sa.Table(  # in-app notifications: written with the event's own transaction, once per key
    "notifications", metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(300), nullable=False, unique=True),  # event + recipient: a retried write notifies once
    sa.Column("user_id", sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("kind", sa.String(30), nullable=False),   # task, group_task, alert, approval, reply, mention, returned
    sa.Column("text", sa.String(500), nullable=False),  # in words, names and local times already in
    sa.Column("link", sa.String(500)),                  # where it leads (/tasks/7, /portal/requests/3)
    sa.Column("created_at", When, nullable=False),
    sa.Column("read_at", When),
    sa.Index("ix_notifications_user_unread", "user_id", "read_at"),
)

contact_history = sa.Table(
    "contact_history", metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(300), unique=True),      # optional idempotency key of the event
    sa.Column("entity", sa.String(64), nullable=False),
    sa.Column("record_id", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.String(30), nullable=False),   # submission, task, alert, note, change
    sa.Column("summary", sa.String(500), nullable=False),
    sa.Column("form", sa.String(64)),
    sa.Column("data", JSON),
    sa.Column("user_id", sa.BigInteger),
    sa.Column("occurred_at", When, nullable=False),
    sa.Column("public", sa.Boolean, nullable=False, server_default=sa.false()),  # shown to the customer's portal users
    sa.Index("ix_contact_history_record", "entity", "record_id", "occurred_at"),
    sa.Index("ix_contact_history_occurred", "occurred_at"),  # reports: contact with customers in a period
    sa.Index("ix_contact_history_user", "user_id", "occurred_at"),  # My work: the records a user touched last (0015)
)

audit_log = sa.Table(
    "audit_log", metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("entity", sa.String(64), nullable=False),
    sa.Column("record_id", sa.BigInteger, nullable=False),
    sa.Column("action", sa.String(20), nullable=False),  # create, update, delete, add_field
    sa.Column("user_id", sa.BigInteger),
    sa.Column("at", When, nullable=False),
    sa.Column("before", JSON),
    sa.Column("after", JSON),
    sa.Index("ix_audit_log_record", "entity", "record_id", "at"),
    sa.Index("ix_audit_log_entity_at", "entity", "at"),  # reports: an entity's changes in a period (the pipeline's stays)
)

idempotency_keys = sa.Table(
    "idempotency_keys", metadata,
    sa.Column("key", sa.String(300), primary_key=True),
    sa.Column("scope", sa.String(64), nullable=False),
    sa.Column("result", JSON, nullable=False),
    sa.Column("created_at", When, nullable=False),
)

process_starts = sa.Table(  # the outbox: processes to start, written in the transaction of the change that starts them
    "process_starts", metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("workflow_id", sa.String(400), nullable=False, unique=True),  # `process/key`: a replayed change finds its row
    sa.Column("process", sa.String(64), nullable=False),
    sa.Column("key", sa.String(300), nullable=False),    # what started it: a record version, a submission, demo data
    sa.Column("entity", sa.String(64)),
    sa.Column("record_id", sa.BigInteger),
    sa.Column("inputs", JSON, nullable=False),
    sa.Column("started_by", sa.BigInteger),
    sa.Column("status", sa.String(20), nullable=False),  # pending, started, abandoned (its record was deleted first)
    sa.Column("created_at", When, nullable=False),
    sa.Column("next_attempt_at", When, nullable=False),  # the drainer's turn; later after each failed attempt
    sa.Column("started_at", When),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text),
    sa.Index("ix_process_starts_due", "status", "next_attempt_at"),
)

mail_outbox = sa.Table(  # emails to send, written in the transaction of what they tell (a staff reply to a customer)
    "mail_outbox", metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(300), nullable=False, unique=True),  # what it is about: once per event, and its Message-ID
    sa.Column("recipients", JSON, nullable=False),       # email addresses
    sa.Column("subject", sa.String(500), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("link", sa.String(500)),                   # a path on the site: the sender puts the site's address before it
    sa.Column("status", sa.String(20), nullable=False),  # pending, sent, failed (given up after many attempts)
    sa.Column("created_at", When, nullable=False),
    sa.Column("next_attempt_at", When, nullable=False),  # the sender's turn; later after each failed attempt
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("sent_at", When),
    sa.Column("last_error", sa.Text),
    sa.Index("ix_mail_outbox_due", "status", "next_attempt_at"),
)

saved_views = sa.Table(  # a user's named directory views: the columns, filters and sort they chose, as a query string
    "saved_views", metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("entity", sa.String(64), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("query", sa.Text, nullable=False),
    sa.Column("created_at", When, nullable=False),
    sa.UniqueConstraint("user_id", "entity", "name"),  # saving under a name already used replaces that view
)

console_log = sa.Table(  # what administrators did in the console (or the CLI): who, what, to whom, why
    "console_log", metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("at", When, nullable=False),
    sa.Column("actor_id", sa.BigInteger),                 # the administrator (none: the command line)
    sa.Column("action", sa.String(40), nullable=False),   # user.create, user.deactivate, group.add_member, ...
    sa.Column("subject", sa.String(200), nullable=False),  # whom or what, in words: "user ann (Ann Sales)"
    sa.Column("details", JSON),
    sa.Column("reason", sa.Text),
    sa.Index("ix_console_log_at", "at"),
)

releases = sa.Table(  # configuration releases: every pack's files, content-addressed and immutable (0009)
    "releases", metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("digest", sa.String(64), nullable=False, unique=True),  # sha256 of the files: the same files are one release
    sa.Column("files", JSON, nullable=False),                        # {pack folder: {relative path: text}}
    sa.Column("packs", JSON, nullable=False),                        # the pack folders in load order
    sa.Column("author_id", sa.BigInteger),
    sa.Column("reason", sa.Text),
    sa.Column("created_at", When, nullable=False),
)

release_state = sa.Table(  # one row: the active release, and a counter every node polls to see a new one
    "release_state", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("release_id", sa.ForeignKey("releases.id"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("activated_at", When, nullable=False),
    sa.Column("activated_by", sa.BigInteger),
    sa.Column("reason", sa.Text),
)

release_log = sa.Table(  # every activation: what was active when, who switched and why (history, revert)
    "release_log", metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("release_id", sa.ForeignKey("releases.id"), nullable=False),
    sa.Column("activated_at", When, nullable=False),
    sa.Column("activated_by", sa.BigInteger),
    sa.Column("reason", sa.Text),
)

release_drafts = sa.Table(  # the local pack being edited in the console, on top of a release
    "release_drafts", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("base_release_id", sa.ForeignKey("releases.id"), nullable=False),
    sa.Column("files", JSON, nullable=False),  # {relative path: text} of the local pack
    sa.Column("updated_at", When, nullable=False),
    sa.Column("updated_by", sa.BigInteger),
)

definition_state = sa.Table(  # what `tailor migrate` last applied, to diff against
    "definition_state", metadata,
    sa.Column("entity", sa.String(64), primary_key=True),
    sa.Column("schema", JSON, nullable=False),           # the entity's JSON Schema as applied
    sa.Column("fields", JSON, nullable=False),           # how each field is stored, removed (hidden) ones included
    sa.Column("applied_at", When, nullable=False),
)
