"""A job records its images' content tag (the watermark's 24 bits of what they were made from), so
`verify` can name the tasks that made an image whose manifest was stripped.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("content_tag", sa.Integer(), nullable=True))
        batch.create_index("ix_jobs_content_tag", ["content_tag"])


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_content_tag")
        batch.drop_column("content_tag")
