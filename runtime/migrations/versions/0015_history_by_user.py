"""Contact history by who wrote it, newest first: My work lists the records a user touched last (runtime.recent), and
without this index every page load would read the whole history.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""
from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_contact_history_user", "contact_history", ["user_id", "occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_contact_history_user", table_name="contact_history")
