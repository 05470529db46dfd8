"""the alert inbox (decided_at), work leases, the Slack outbox, the audit-by-model index

Revision ID: 0003
Revises: 0002
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'leases',
        sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('owner', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('fencing', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_leases')),
    )
    op.create_table(
        'slack_outbox',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('proposal_id', sa.Integer(), nullable=False),
        sa.Column('event', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column('detail', sa.Text(), nullable=True),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('done_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('permanent', sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(['proposal_id'], ['proposals.id'],
                                name=op.f('fk_slack_outbox_proposal_id_proposals')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_slack_outbox')),
    )
    with op.batch_alter_table('slack_outbox', schema=None) as batch_op:
        batch_op.create_index('ix_slack_outbox_pending', ['done_at', 'proposal_id', 'id'], unique=False)
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('decided_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True))
        batch_op.add_column(sa.Column('outcome_reason', sa.Text(), nullable=True))
        batch_op.create_index('ix_alerts_pending', ['decided_at', 'model', 'id'], unique=False)
    # Alerts stored before the inbox existed were decided in their request.
    op.execute("UPDATE alerts SET decided_at = received_at")
    with op.batch_alter_table('audit', schema=None) as batch_op:
        batch_op.create_index('ix_audit_model_id', ['model', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('audit', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_model_id')
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_alerts_pending')
        batch_op.drop_column('outcome_reason')
        batch_op.drop_column('outcome')
        batch_op.drop_column('decided_at')
    with op.batch_alter_table('slack_outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_slack_outbox_pending')
    op.drop_table('slack_outbox')
    op.drop_table('leases')
