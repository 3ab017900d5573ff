"""Sharing the service between keys: per-key limits, a fair queue, idempotency keys, usage ledger.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from seqdream.db.models import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("rate_per_min", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("max_active", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("credits", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("weight", sa.Float(), nullable=True))
        batch.add_column(sa.Column("last_submit_at", UTCDateTime(), nullable=True))
    with op.batch_alter_table("jobs") as batch:
        # Jobs queued before the upgrade rank first, in the order they were created.
        batch.add_column(sa.Column("fair_rank", sa.Float(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("credits_reserved", sa.Integer(), nullable=False, server_default="0"))
    op.create_index("ix_jobs_status_rank", "jobs", ["status", "fair_rank"])
    op.create_index("ix_jobs_key_created", "jobs", ["api_key_id", "created_at"])
    op.create_table(
        "idempotency_keys",
        sa.Column("owner", sa.String(32), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "usage_records",
        sa.Column("job_id", sa.String(32), primary_key=True),
        sa.Column("api_key_id", sa.String(32), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("images", sa.Integer(), nullable=False),
        sa.Column("model_ms", sa.Integer(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_usage_key_finished", "usage_records", ["api_key_id", "finished_at"])


def downgrade() -> None:
    op.drop_index("ix_usage_key_finished", "usage_records")
    op.drop_table("usage_records")
    op.drop_table("idempotency_keys")
    op.drop_index("ix_jobs_key_created", "jobs")
    op.drop_index("ix_jobs_status_rank", "jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("credits_reserved")
        batch.drop_column("fair_rank")
    with op.batch_alter_table("api_keys") as batch:
        for column in ("last_submit_at", "weight", "credits", "max_active", "rate_per_min"):
            batch.drop_column(column)
