"""prediction rollups: predictions added up per minute, for monitoring reports

Revision: 0006_prediction_rollups
Revises: 0005
Created: 2026-11-26 19:40:00

The predictions already stored are added up here (streamed in id order), so an upgraded
store reports what it reported before. That uses ``cairn.domain.rollups``, the code that
keeps the rollups afterwards: the two cannot disagree about what a rollup holds.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cairn.domain.rollups import Rollup, RollupKey, fold

revision = "0006_prediction_rollups"
down_revision = "0005"
branch_labels = None
depends_on = None

_CHUNK = 20_000  # predictions read at a time while backfilling


def upgrade() -> None:
    op.create_table(
        "prediction_rollups",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("model_id", sa.BigInteger(), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("endpoint_id", sa.BigInteger(), nullable=False),
        sa.Column("variant", sa.String(length=100), nullable=False),
        sa.Column("shadow", sa.Boolean(), nullable=False),
        sa.Column("minute", sa.BigInteger(), nullable=False),
        sa.Column("volume", sa.BigInteger(), nullable=False),
        sa.Column("errors", sa.BigInteger(), nullable=False),
        sa.Column("latency", sa.Text(), nullable=False),
        sa.Column("outputs", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prediction_rollups")),
    )
    with op.batch_alter_table("prediction_rollups", schema=None) as batch_op:
        batch_op.create_index(
            "ix_prediction_rollups_endpoint", ["endpoint_id", "minute"], unique=False
        )
        batch_op.create_index(
            "uq_prediction_rollups_key",
            [
                "project_id",
                "model_id",
                "model_version",
                "endpoint_id",
                "variant",
                "shadow",
                "minute",
            ],
            unique=True,
        )
    _backfill()


def _backfill() -> None:
    """Every stored prediction added to its minute's rollup: folded a chunk at a time,
    merged in memory (a rollup per group and minute: small), inserted at the end."""
    conn = op.get_bind()
    predictions = sa.table(
        "predictions",
        *(
            sa.column(c)
            for c in (
                "id",
                "project_id",
                "model_id",
                "model_version",
                "endpoint_id",
                "variant",
                "shadow",
                "at",
                "outputs",
                "latency_ms",
                "error",
            )
        ),
    )
    columns = [c for c in predictions.c if c.name != "id"]
    total: dict[RollupKey, Rollup] = {}
    last = None
    while True:
        stmt = sa.select(predictions.c.id, *columns).order_by(predictions.c.id).limit(_CHUNK)
        if last is not None:
            stmt = stmt.where(predictions.c.id > last)
        rows = conn.execute(stmt).all()
        if not rows:
            break
        last = rows[-1][0]
        for key, rollup in fold(tuple(r[1:]) for r in rows).items():
            if key in total:
                total[key].merge(rollup)
            else:
                total[key] = rollup
    _insert(conn, total)


def _insert(conn: sa.Connection, rollups: dict[RollupKey, Rollup]) -> None:
    table = sa.table(
        "prediction_rollups",
        *(
            sa.column(c)
            for c in (
                "project_id",
                "model_id",
                "model_version",
                "endpoint_id",
                "variant",
                "shadow",
                "minute",
                "volume",
                "errors",
                "latency",
                "outputs",
            )
        ),
    )
    rows = [
        {
            "project_id": key[0],
            "model_id": key[1],
            "model_version": key[2],
            "endpoint_id": key[3],
            "variant": key[4],
            "shadow": key[5],
            "minute": key[6],
            "volume": rollup.volume,
            "errors": rollup.errors,
            "latency": rollup.latency_json(),
            "outputs": rollup.outputs_json(),
        }
        for key, rollup in sorted(rollups.items())
    ]
    for start in range(0, len(rows), 1000):
        conn.execute(sa.insert(table), rows[start : start + 1000])


def downgrade() -> None:
    with op.batch_alter_table("prediction_rollups", schema=None) as batch_op:
        batch_op.drop_index("uq_prediction_rollups_key")
        batch_op.drop_index("ix_prediction_rollups_endpoint")
    op.drop_table("prediction_rollups")
