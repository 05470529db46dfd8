"""proposals.action (rollback | abort_canary); audit_notices and watermarks for unusual-activity messages

Revision ID: 0008
Revises: 0007
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('proposals', schema=None) as batch_op:
        batch_op.add_column(sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False,
                                      server_default='rollback'))
    op.create_table('audit_notices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('audit_id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('model', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('done_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('permanent', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_notices')),
    sa.UniqueConstraint('audit_id', 'kind', name='uq_audit_notices_audit_kind')
    )
    with op.batch_alter_table('audit_notices', schema=None) as batch_op:
        batch_op.create_index('ix_audit_notices_pending', ['done_at', 'id'], unique=False)
    op.create_table('watermarks',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_watermarks'))
    )
    # Unusual activity is announced from now on: rows written before this upgrade are not announced late.
    op.execute("INSERT INTO watermarks (name, position) SELECT 'audit:unusual', COALESCE(MAX(id), 0) FROM audit")


def downgrade() -> None:
    op.drop_table('watermarks')
    with op.batch_alter_table('audit_notices', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_notices_pending')
    op.drop_table('audit_notices')
    with op.batch_alter_table('proposals', schema=None) as batch_op:
        batch_op.drop_column('action')
