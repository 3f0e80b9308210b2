"""The SDK's monitoring and A/B analysis: what ``cairn.Client`` reports on production.

    report = cairn.monitoring_report("churn", since="24h", window="1h")   # an endpoint
    report = cairn.monitoring_report("iris@production", since="7d", window="1d")  # a model
    for window in report.windows:
        for group in window.groups:
            print(window.start, group.variant, group.version, group.error_rate, group.drift)
    ab = cairn.ab_report("churn", metric="accuracy", since="7d")
    if ab.winner == "challenger":
        cairn.promote("churn", "challenger")      # moves iris@production, audited

``since`` and ``until`` take a datetime, a timedelta back from now, an ISO 8601 text or
a duration text (``24h``, ``7d``); ``window`` a timedelta or a duration text.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from cairn.domain.errors import NotFound
from cairn.domain.experiments import ABReport, Promotion
from cairn.domain.monitoring import MonitoringReport, as_utc

if TYPE_CHECKING:
    from cairn.client.backend import Backend

When = datetime | timedelta | str | None


def when_text(value: When) -> str | None:
    """A point in time as the API takes it: ISO 8601, or a duration back from now."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, timedelta):
        return f"{value.total_seconds():g}s"
    return as_utc(value).isoformat()


def window_text(value: timedelta | str | float) -> str:
    if isinstance(value, timedelta):
        return f"{value.total_seconds():g}s"
    return str(value)


class MonitoringApi:
    """Mixed into ``Client``: needs ``backend`` and ``_project``."""

    backend: Backend

    def _project(self, project: str | None) -> str:
        raise NotImplementedError

    def monitoring_report(
        self,
        endpoint_or_model: str,
        *,
        since: When = "24h",
        until: When = None,
        window: timedelta | str | float = "1h",
        project: str | None = None,
    ) -> MonitoringReport:
        """Per window and model version (and variant): volume, error rate, latency p50/p95/
        p99, the outputs' distribution, quality from feedback and the inputs' drift from
        the training data. An endpoint's name is looked up first, then a model (a name
        for all its versions, or ``iris:3``, ``iris@production`` for one).

        Example: ``cairn.monitoring_report("churn", since="24h", window="1h").alerts``.
        """
        where = self._project(project)
        args = (where, when_text(since), when_text(until), window_text(window))
        try:
            return self.backend.monitoring_report(*args, endpoint=endpoint_or_model, model=None)
        except NotFound as exc:
            if exc.details.get("endpoint") != endpoint_or_model:
                raise
        return self.backend.monitoring_report(*args, endpoint=None, model=endpoint_or_model)

    def ab_report(
        self,
        endpoint: str,
        *,
        metric: str = "accuracy",
        since: When = None,
        until: When = None,
        baseline: str | None = None,
        mde: float | None = None,
        project: str | None = None,
    ) -> ABReport:
        """The A/B analysis of an endpoint's variants on ``metric`` (accuracy, error_rate,
        conversion, latency, absolute_error, squared_error, outcome).

        Example: ``cairn.ab_report("churn", metric="error_rate", since="7d").winner``.
        """
        return self.backend.ab_report(
            self._project(project),
            endpoint,
            metric=metric,
            since=when_text(since),
            until=when_text(until),
            baseline=baseline,
            mde=mde,
        )

    def promote(
        self,
        endpoint: str,
        variant: str,
        *,
        reason: str | None = None,
        metric: str = "accuracy",
        project: str | None = None,
    ) -> Promotion:
        """Move the alias the endpoint's champion serves to ``variant``'s version; the
        audit log keeps the move with the A/B result on ``metric`` as its reason.

        Example: ``cairn.promote("churn", "challenger", reason="two weeks of A/B")``.
        """
        return self.backend.promote(
            self._project(project), endpoint, variant, reason=reason, metric=metric
        )
