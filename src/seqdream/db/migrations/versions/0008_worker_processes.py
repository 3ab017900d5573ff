"""The processes that run workers, as each last reported itself: any process can then tell a queued
task why it waits (no worker runs, or none can load its model).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

from seqdream.db.models import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "worker_processes",
        sa.Column("id", sa.String(96), primary_key=True),
        sa.Column("workers", sa.Integer(), nullable=False),
        sa.Column("engine", sa.String(16), nullable=False),
        sa.Column("engine_error", sa.Text(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("seen_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("worker_processes")
