import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade():
    notes = op.create_table("notes", sa.Column("id", sa.Integer, primary_key=True), sa.Column("text", sa.String(200)))
    op.bulk_insert(notes, [{"id": 1, "text": "created by the migration"}])


def downgrade():
    op.drop_table("notes")
