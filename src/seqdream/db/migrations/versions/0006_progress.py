"""Progress you can watch: a running job's denoising steps and latest preview, its size and image count, and the
measured task times that ETAs are estimated from (shared by every API process and worker).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from seqdream.db.models import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("size", sa.String(32), nullable=True))
        batch.add_column(sa.Column("images_total", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("steps_done", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("steps_total", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("batch_steps", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("preview", sa.Text(), nullable=True))
    op.create_table(
        "task_times",
        sa.Column("model", sa.String(128), primary_key=True),
        sa.Column("size", sa.String(32), primary_key=True),
        sa.Column("images", sa.Integer(), primary_key=True),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("task_times")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("preview")
        batch.drop_column("batch_steps")
        batch.drop_column("steps_total")
        batch.drop_column("steps_done")
        batch.drop_column("images_total")
        batch.drop_column("size")
