"""A/B tests on endpoints: which variant does better, how sure that is, and promoting it.

experiments = ExperimentService(db, registry, aliases)
report = experiments.ab_report("default", "churn", metric="accuracy", since=week_ago)
report.winner, report.variants[1].p_value, report.variants[1].more_needed
experiments.promote("default", "churn", "challenger", actor="lee")

The statistics are ``domain/experiments.py`` over ``domain/stats.py``. Promoting moves
the alias the baseline (champion) variant serves, ``iris@production``, to the version
the chosen variant serves now, through ``AliasService.set_alias``: audited, with a
reason that quotes the A/B result.
"""

from __future__ import annotations

from datetime import datetime

from cairn.domain.datasets import check_optional_text
from cairn.domain.errors import Conflict, Invalid
from cairn.domain.experiments import ABReport, Promotion, analyse, baseline_variant, check_metric
from cairn.domain.monitoring import as_utc
from cairn.domain.refs import RefKind, parse_ref
from cairn.domain.validation import check_project_name
from cairn.services.aliases import AliasService
from cairn.services.production import EndpointService, PredictionService
from cairn.services.registry import RegistryService
from cairn.store.database import Database

AB_LIMIT = 500_000  # predictions one report reads; a report that hits it says truncated


class ExperimentService:
    def __init__(
        self,
        db: Database,
        registry: RegistryService,
        aliases: AliasService,
        *,
        limit: int = AB_LIMIT,
    ) -> None:
        self.registry = registry
        self.aliases = aliases
        self.predictions = PredictionService(db, registry)
        self.endpoints = EndpointService(db, registry)
        self.limit = limit

    def ab_report(
        self,
        project: str,
        endpoint: str,
        *,
        metric: str = "accuracy",
        since: datetime | None = None,
        until: datetime | None = None,
        baseline: str | None = None,
        mde: float | None = None,
        alpha: float = 0.05,
        power: float = 0.8,
    ) -> ABReport:
        """Each variant's ``metric`` with a 95% interval, its difference from the baseline
        with a p-value, and the units per variant still needed to detect ``mde``.

        Example: ``experiments.ab_report("default", "churn", metric="error_rate")``.
        """
        check_project_name(project)
        check_metric(metric)
        since = as_utc(since) if since is not None else None
        until = as_utc(until, "until") if until is not None else None
        if since is not None and until is not None and since >= until:
            raise Invalid("since must be earlier than until", field="since")
        found = self.endpoints.get(endpoint, project)
        predictions = self.predictions.predictions(
            project, endpoint=endpoint, since=since, until=until, limit=self.limit + 1
        )
        return analyse(
            project,
            found,
            predictions[: self.limit],
            metric,
            since=since,
            until=until,
            baseline=baseline,
            mde=mde,
            alpha=alpha,
            power=power,
            truncated=len(predictions) > self.limit,
        )

    def promote(
        self,
        project: str,
        endpoint: str,
        variant: str,
        *,
        reason: str | None = None,
        metric: str = "accuracy",
        since: datetime | None = None,
        actor: str | None = None,
    ) -> Promotion:
        """Move the alias the champion variant serves to the version ``variant`` serves.

        Example: ``experiments.promote("default", "churn", "challenger", actor="lee")``
        points ``iris@production`` at the version behind ``iris@staging``.
        """
        check_project_name(project)
        reason = check_optional_text(reason, "reason", 5_000)
        found = self.endpoints.get(endpoint, project)
        chosen = next((v for v in found.variants if v.name == variant), None)
        if chosen is None:
            names = ", ".join(v.name for v in found.variants)
            raise Invalid(
                f"endpoint {endpoint!r} has no variant {variant!r} (it has {names})",
                field="variant",
            )
        champion = baseline_variant(found)
        if chosen.name == champion.name:
            raise Conflict(
                f"{variant!r} is the champion of endpoint {endpoint!r} already",
                details={"endpoint": endpoint, "variant": variant},
            )
        ref = parse_ref(champion.target)
        if ref.kind is not RefKind.ALIAS or ref.alias is None:
            raise Conflict(
                f"the champion variant {champion.name!r} serves {champion.target}, not an alias: "
                "there is no alias to move (point the variant at model@alias)",
                details={"endpoint": endpoint, "variant": champion.name},
            )
        model_project = ref.project or project
        target = self.registry.resolve(chosen.target, project)
        if target.name != ref.name or target.project != model_project:
            raise Conflict(
                f"variant {variant!r} serves {target.project}/{target}, another model than the "
                f"champion's {model_project}/{ref.name}",
                details={"endpoint": endpoint, "variant": variant},
            )
        report = self.ab_report(
            project, endpoint, metric=metric, since=since, baseline=champion.name
        )
        before = self.aliases.resolve_alias(ref.name, ref.alias, project=model_project)
        why = (
            f"promote variant {variant} of endpoint {endpoint} ({target}) over "
            f"{champion.name}; A/B on {metric}: {report.summary}"
        )
        if reason:
            why = f"{reason}. {why}"
        self.aliases.set_alias(
            ref.name,
            ref.alias,
            target.version,
            project=model_project,
            reason=why[:10_000],
            actor=actor,
        )
        return Promotion(
            endpoint=endpoint,
            variant=variant,
            model=ref.name,
            alias=ref.alias,
            from_version=before.version if before is not None else None,
            to_version=target.version,
            reason=why[:10_000],
            report=report,
        )
