"""Users' ids are never given out again (SQLite ``AUTOINCREMENT``).

Revision ID: 0005_users_autoincrement
Revises: 0004_users_keys_audit
Create Date: 2026-11-29

Admins can now delete users, whose call-log rows stay under their user id (shown as 已删除用户). SQLite
without ``AUTOINCREMENT`` gives the next account the largest id in the table plus one, so deleting the
newest account would hand its id, and with it the deleted user's calls and rate-limit count, to the next
one to register. ``AUTOINCREMENT`` keeps the largest id ever used. The table is copied with every row
(``batch_alter_table``); no account existed before that was deleted, so no id was reused before this.
PostgreSQL's sequences never reuse an id: nothing changes there.
"""

from __future__ import annotations

from alembic import op

revision: str = "0005_users_autoincrement"
down_revision: str | None = "0004_users_keys_audit"
branch_labels: str | None = None
depends_on: str | None = None


def _rebuild_users(*, autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "users", recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
    ):
        pass


def upgrade() -> None:
    _rebuild_users(autoincrement=True)


def downgrade() -> None:
    _rebuild_users(autoincrement=False)
