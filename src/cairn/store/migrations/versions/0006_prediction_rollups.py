"""prediction rollups (placeholder: the monitoring work replaces this file)

Revision: 0006_prediction_rollups
Revises: 0005
"""

from __future__ import annotations

revision = "0006_prediction_rollups"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
