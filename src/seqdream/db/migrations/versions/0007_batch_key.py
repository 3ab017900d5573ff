"""Tasks that may run together: a queued task's batch key (its size, for a single image drawn from
the prompt alone; none otherwise). A worker claims tasks of the lead's key beside it.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("batch_key", sa.String(40), nullable=True))
        batch.create_index("ix_jobs_status_batch_key", ["status", "batch_key"])


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_status_batch_key")
        batch.drop_column("batch_key")
