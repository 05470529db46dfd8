"""blocked_versions: versions the bot rolled back stay blocked from deployment until an approver lifts them

Existing rollbacks are carried over: each succeeded (not dry-run) rollback blocks the version it rolled back
from, unless a later undo rolled forward to it again.

Revision ID: 0007
Revises: 0006
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE = sa.text('unblocked_at IS NULL')


def upgrade() -> None:
    op.create_table('blocked_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('version', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('blocked_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('blocked_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('proposal_id', sa.Integer(), nullable=True),
    sa.Column('unblocked_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('unblocked_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('unblock_reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['model'], ['models.name'], name=op.f('fk_blocked_versions_model_models')),
    sa.ForeignKeyConstraint(['proposal_id'], ['proposals.id'],
                            name=op.f('fk_blocked_versions_proposal_id_proposals')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_blocked_versions'))
    )
    with op.batch_alter_table('blocked_versions', schema=None) as batch_op:
        batch_op.create_index('uq_blocked_versions_active', ['model', 'version'], unique=True,
                              sqlite_where=ACTIVE, postgresql_where=ACTIVE)
    _carry_over_rollbacks()


def _carry_over_rollbacks() -> None:
    proposals = sa.table('proposals', sa.column('id', sa.Integer), sa.column('model', sa.String),
                         sa.column('from_version', sa.String), sa.column('to_version', sa.String),
                         sa.column('state', sa.String), sa.column('kind', sa.String),
                         sa.column('dry_run', sa.Boolean), sa.column('decided_by', sa.String),
                         sa.column('reason', sa.Text), sa.column('finished_at', sqlmodel.sql.sqltypes.UTCDateTime))
    blocked = sa.table('blocked_versions', sa.column('model', sa.String), sa.column('version', sa.String),
                       sa.column('blocked_at', sqlmodel.sql.sqltypes.UTCDateTime), sa.column('blocked_by', sa.String),
                       sa.column('reason', sa.Text), sa.column('proposal_id', sa.Integer))
    bind = op.get_bind()
    rows = bind.execute(sa.select(proposals).where(proposals.c.state == 'succeeded',
                                                   proposals.c.dry_run == sa.false())
                        .order_by(proposals.c.id)).mappings().all()
    active: dict[tuple[str, str], dict[str, object]] = {}
    for row in rows:
        if row['kind'] == 'undo':
            active.pop((row['model'], row['to_version']), None)
            continue
        active.setdefault((row['model'], row['from_version']), {
            'model': row['model'], 'version': row['from_version'], 'blocked_at': row['finished_at'],
            'blocked_by': row['decided_by'] or 'bot', 'reason': row['reason'] or '', 'proposal_id': row['id']})
    if active:
        op.bulk_insert(blocked, list(active.values()))


def downgrade() -> None:
    with op.batch_alter_table('blocked_versions', schema=None) as batch_op:
        batch_op.drop_index('uq_blocked_versions_active', sqlite_where=ACTIVE, postgresql_where=ACTIVE)
    op.drop_table('blocked_versions')
