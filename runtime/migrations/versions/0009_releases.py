"""Configuration releases: the packs' files as immutable, content-addressed bundles (releases), the active one
(release_state, polled by every node), every activation (release_log) and the console's draft of the local pack.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "releases",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("files", JSON, nullable=False),
        sa.Column("packs", JSON, nullable=False),
        sa.Column("author_id", sa.BigInteger),
        sa.Column("reason", sa.Text),
        sa.Column("created_at", When, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_releases"),
        sa.UniqueConstraint("digest", name="uq_releases_digest"),
    )
    op.create_table(
        "release_state",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("release_id", Id, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("activated_at", When, nullable=False),
        sa.Column("activated_by", sa.BigInteger),
        sa.Column("reason", sa.Text),
        sa.ForeignKeyConstraint(["release_id"], ["releases.id"], name="fk_release_state_release_id_releases"),
        sa.PrimaryKeyConstraint("id", name="pk_release_state"),
    )
    op.create_table(
        "release_log",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("release_id", Id, nullable=False),
        sa.Column("activated_at", When, nullable=False),
        sa.Column("activated_by", sa.BigInteger),
        sa.Column("reason", sa.Text),
        sa.ForeignKeyConstraint(["release_id"], ["releases.id"], name="fk_release_log_release_id_releases"),
        sa.PrimaryKeyConstraint("id", name="pk_release_log"),
    )
    op.create_table(
        "release_drafts",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("base_release_id", Id, nullable=False),
        sa.Column("files", JSON, nullable=False),
        sa.Column("updated_at", When, nullable=False),
        sa.Column("updated_by", sa.BigInteger),
        sa.ForeignKeyConstraint(["base_release_id"], ["releases.id"], name="fk_release_drafts_base_release_id_releases"),
        sa.PrimaryKeyConstraint("id", name="pk_release_drafts"),
    )


def downgrade() -> None:
    for name in ("release_drafts", "release_log", "release_state", "releases"):
        op.drop_table(name)
