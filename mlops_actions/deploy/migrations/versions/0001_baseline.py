"""Baseline: the gateway state database as every release before migrations wrote it.

Those releases ran ``CREATE TABLE IF NOT EXISTS`` on open and kept no version
table; this revision likewise creates only the tables and index that are
missing, so such a database is taken over in place with every row.

Revision ID: 0001
Revises:
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table("routes"):
        op.create_table(
            "routes",
            sa.Column("environment", sa.Text, primary_key=True),
            sa.Column("model", sa.Text, primary_key=True),
            sa.Column("data", sa.Text),
            sa.Column("updated_at", sa.REAL),
        )
    if not inspector.has_table("rollouts"):
        op.create_table(
            "rollouts",
            sa.Column("id", sa.Text, primary_key=True),
            sa.Column("environment", sa.Text),
            sa.Column("model", sa.Text),
            sa.Column("data", sa.Text),
            sa.Column("phase", sa.Text),
            sa.Column("created_at", sa.REAL),
            sa.Column("updated_at", sa.REAL),
        )
    if "rollouts_model" not in {ix["name"] for ix in inspector.get_indexes("rollouts")}:
        op.create_index("rollouts_model", "rollouts", ["environment", "model", "created_at"])
    if not inspector.has_table("analysis_runs"):
        op.create_table(
            "analysis_runs",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("rollout_id", sa.Text),
            sa.Column("step", sa.Integer),
            sa.Column("data", sa.Text),
            sa.Column("at", sa.REAL),
            sqlite_autoincrement=True,
        )
    if not inspector.has_table("history"):
        op.create_table(
            "history",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("environment", sa.Text),
            sa.Column("model", sa.Text),
            sa.Column("version", sa.Text),
            sa.Column("event", sa.Text),
            sa.Column("actor", sa.Text),
            sa.Column("detail", sa.Text),
            sa.Column("at", sa.REAL),
            sqlite_autoincrement=True,
        )


def downgrade() -> None:
    for table in ("history", "analysis_runs", "rollouts", "routes"):
        op.drop_table(table)
