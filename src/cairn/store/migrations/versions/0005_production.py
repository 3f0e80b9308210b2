"""production: endpoints, predictions, feedback

Revision: 0005
Revises: 0004
Created: 2026-11-26 16:10:41.249578
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("request_id", sa.String(length=100), nullable=False),
        sa.Column("actual", sa.Text(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("project_id", "request_id", name=op.f("pk_feedback")),
    )
    op.create_table(
        "predictions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("model_id", sa.BigInteger(), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("endpoint_id", sa.BigInteger(), nullable=True),
        sa.Column("variant", sa.String(length=100), nullable=False),
        sa.Column("shadow", sa.Boolean(), nullable=False),
        sa.Column("request_id", sa.String(length=100), nullable=False),
        sa.Column("unit_id", sa.String(length=250), nullable=True),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("inputs", sa.Text(), nullable=False),
        sa.Column("outputs", sa.Text(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_predictions")),
    )
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.create_index("ix_predictions_endpoint_at", ["endpoint_id", "at"], unique=False)
        batch_op.create_index(
            "ix_predictions_model_at", ["model_id", "model_version", "at"], unique=False
        )
        batch_op.create_index(
            "uq_predictions_request", ["project_id", "request_id", "variant"], unique=True
        )

    op.create_table(
        "endpoints",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "project_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("settings", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_endpoints_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_endpoints")),
    )
    with op.batch_alter_table("endpoints", schema=None) as batch_op:
        batch_op.create_index("uq_endpoints_project_name", ["project_id", "name"], unique=True)

    op.create_table(
        "endpoint_variants",
        sa.Column(
            "endpoint_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("target", sa.String(length=600), nullable=False),
        sa.Column("weight", sa.Integer(), nullable=False),
        sa.Column("shadow", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["endpoints.id"],
            name=op.f("fk_endpoint_variants_endpoint_id_endpoints"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("endpoint_id", "name", name=op.f("pk_endpoint_variants")),
    )


def downgrade() -> None:
    op.drop_table("endpoint_variants")
    with op.batch_alter_table("endpoints", schema=None) as batch_op:
        batch_op.drop_index("uq_endpoints_project_name")

    op.drop_table("endpoints")
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.drop_index("uq_predictions_request")
        batch_op.drop_index("ix_predictions_model_at")
        batch_op.drop_index("ix_predictions_endpoint_at")

    op.drop_table("predictions")
    op.drop_table("feedback")
