"""slack_signatures: signatures of recent Slack requests, so a replayed request is refused on every replica

Revision ID: 0005
Revises: 0004
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('slack_signatures',
    sa.Column('signature', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('request_ts', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('signature', name=op.f('pk_slack_signatures'))
    )
    with op.batch_alter_table('slack_signatures', schema=None) as batch_op:
        batch_op.create_index('ix_slack_signatures_request_ts', ['request_ts'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('slack_signatures', schema=None) as batch_op:
        batch_op.drop_index('ix_slack_signatures_request_ts')
    op.drop_table('slack_signatures')
