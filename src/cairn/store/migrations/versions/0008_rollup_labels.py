"""rollup labels: the feedback of each minute's predictions, counted as it arrives

Revision: 0008
Revises: 0007
Created: 2026-11-26 22:20:00

A report's quality used to join every feedback row to its prediction (a random read
each: most of the time of a report over a million predictions). The rollups now count
the (outputs, actual) pairs as feedback and predictions arrive; here the feedback
already stored is joined once, with ``cairn.domain.rollups`` (the code that keeps the
counts afterwards), so an upgraded store reports what it reported before.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from cairn.domain.rollups import Rollup, RollupKey, fold_labels

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_CHUNK = 20_000  # joined rows read at a time while backfilling
_KEY = ("project_id", "model_id", "model_version", "endpoint_id", "variant", "shadow", "minute")
_SOURCE = (
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
    "request_id",
)


def upgrade() -> None:
    with op.batch_alter_table("prediction_rollups", schema=None) as batch_op:
        batch_op.add_column(sa.Column("labels", sa.Text(), server_default="{}", nullable=False))
    _backfill()


def _backfill() -> None:
    conn = op.get_bind()
    predictions = sa.table("predictions", *(sa.column(c) for c in ("id", *_SOURCE)))
    feedback = sa.table("feedback", *(sa.column(c) for c in ("project_id", "request_id", "actual")))
    stmt = sa.select(feedback.c.actual, *(predictions.c[c] for c in _SOURCE)).select_from(
        feedback.join(
            predictions,
            sa.and_(
                predictions.c.project_id == feedback.c.project_id,
                predictions.c.request_id == feedback.c.request_id,
            ),
        )
    )
    total: dict[RollupKey, Rollup] = {}
    streamed = conn.execute(stmt, execution_options={"stream_results": True})
    for rows in streamed.partitions(_CHUNK):
        changes: list[tuple[Any, str, int]] = [(tuple(r[1:]), r[0], 1) for r in rows]
        for key, rollup in fold_labels(changes).items():
            if key in total:
                total[key].merge(rollup)
            else:
                total[key] = rollup
    rollups = sa.table("prediction_rollups", *(sa.column(c) for c in (*_KEY, "labels")))
    for key, rollup in sorted(total.items()):
        conn.execute(
            sa.update(rollups)
            .where(*(rollups.c[c] == v for c, v in zip(_KEY, key, strict=True)))
            .values(labels=rollup.labels_json())
        )


def downgrade() -> None:
    with op.batch_alter_table("prediction_rollups", schema=None) as batch_op:
        batch_op.drop_column("labels")
