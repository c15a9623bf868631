"""Baseline: the prediction store as every release before migrations wrote it.

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

DOUBLE: sa.DOUBLE_PRECISION[float] = sa.DOUBLE_PRECISION()


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table("predictions"):
        op.create_table(
            "predictions",
            sa.Column("request_id", sa.Text, primary_key=True),
            sa.Column("model", sa.Text, nullable=False),
            sa.Column("version", sa.Text, nullable=False),
            sa.Column("timestamp", DOUBLE, nullable=False),
            sa.Column("features", sa.Text),
            sa.Column("output", sa.Text),
            sa.Column("latency_ms", DOUBLE, nullable=False, server_default=sa.text("0")),
            sa.Column("status", sa.Integer, nullable=False, server_default=sa.text("200")),
            sa.Column("environment", sa.Text, nullable=False, server_default=sa.text("''")),
            sa.Column("variant", sa.Text, nullable=False, server_default=sa.text("''")),
            sa.Column("actual", sa.Text),
            sa.Column("actual_at", DOUBLE),
        )
    if "predictions_model_ts" not in {ix["name"] for ix in inspector.get_indexes("predictions")}:
        op.create_index("predictions_model_ts", "predictions", ["model", "timestamp"])
    if not inspector.has_table("pending_actuals"):
        op.create_table(
            "pending_actuals",
            sa.Column("request_id", sa.Text, primary_key=True),
            sa.Column("actual", sa.Text),
            sa.Column("received_at", DOUBLE, nullable=False),
            sa.Column("batch", sa.Text, nullable=False),
        )
    if not inspector.has_table("baselines"):
        op.create_table(
            "baselines",
            sa.Column("model", sa.Text, primary_key=True),
            sa.Column("version", sa.Text, primary_key=True),
            sa.Column("kind", sa.Text, primary_key=True),
            sa.Column("payload", sa.Text, nullable=False),
            sa.Column("updated_at", DOUBLE, nullable=False),
        )
    if not inspector.has_table("store_health"):
        op.create_table(
            "store_health",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("probed_at", DOUBLE),
        )


def downgrade() -> None:
    for table in ("store_health", "baselines", "pending_actuals", "predictions"):
        op.drop_table(table)
