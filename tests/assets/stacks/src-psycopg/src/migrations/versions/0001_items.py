"""items"""

from alembic import op

revision = "0001"
down_revision = None


def upgrade():
    op.execute("CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL)")
    op.execute("INSERT INTO items (name) VALUES ('migrated')")


def downgrade():
    op.execute("DROP TABLE items")
