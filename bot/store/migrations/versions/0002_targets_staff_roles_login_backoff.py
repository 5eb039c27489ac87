"""delivery targets and alert priority in the outbox; staff roles; login backoff in the database

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 21:00:00

Outbox rows name their target (one row per escalation, kind and target) and carry a priority so
emergencies are sent before urgents. An escalation's staff_message becomes a map from target to
that target's message reference; the one reference 0001 kept was the Telegram staff chat's.
Escalations get alerted_at, from which the timers worker derives its due times with its own
settings (0001 kept due times computed by whichever process recorded the escalation).
Login failures are counted in the database (one row per hashed name or client address), so the
limit holds across processes and is checked before any password work.
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('target', sa.String(length=32), nullable=False, server_default='telegram'))
        batch_op.add_column(sa.Column('priority', sa.Integer(), nullable=False, server_default='1'))
        batch_op.create_index('ix_outbox_status_priority_due', ['status', 'priority', 'next_attempt_at'],
                              unique=False)
        batch_op.create_index('ix_outbox_target_sent', ['target', 'sent_at'], unique=False)
    op.execute("UPDATE outbox SET target = 'patient' WHERE kind = 'patient_notice'")
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.add_column(sa.Column('role', sa.String(length=16), nullable=False, server_default='nurse'))
        batch_op.add_column(sa.Column('deactivated_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('totp_secret', sa.String(length=64), nullable=True))
    with op.batch_alter_table('escalations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('alerted_at', sa.DateTime(), nullable=True))
    op.execute("UPDATE escalations SET alerted_at = created_at WHERE alerted_at IS NULL")
    op.create_table('login_attempts',
    sa.Column('key', sa.String(length=80), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('window_start', sa.DateTime(), nullable=False),
    sa.Column('blocked_until', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_login_attempts'))
    )
    _wrap_staff_messages()


def _wrap_staff_messages() -> None:
    """{chat_id, message_id} (0001: the Telegram staff chat) -> {"telegram": {chat_id, message_id}}."""
    bind = op.get_bind()
    esc = sa.table('escalations', sa.column('id', sa.String), sa.column('staff_message', sa.JSON))
    for row in bind.execute(sa.select(esc.c.id, esc.c.staff_message)).fetchall():
        ref = row.staff_message or {}
        if ref and "message_id" in ref:
            bind.execute(esc.update().where(esc.c.id == row.id).values(staff_message={"telegram": ref}))


def downgrade() -> None:
    op.drop_table('login_attempts')
    with op.batch_alter_table('escalations', schema=None) as batch_op:
        batch_op.drop_column('alerted_at')
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.drop_column('totp_secret')
        batch_op.drop_column('deactivated_at')
        batch_op.drop_column('role')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_target_sent')
        batch_op.drop_index('ix_outbox_status_priority_due')
        batch_op.drop_column('priority')
        batch_op.drop_column('target')
