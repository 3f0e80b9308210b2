"""A/B analysis and promotion on a real database (SQLite, and PostgreSQL when configured).

An endpoint ``churn`` splits traffic between ``champion`` (wine@production, version 1)
and ``challenger`` (wine@staging, version 2). Predictions and feedback are seeded so the
truth is known: a clearly better challenger is significant, two equal variants are not;
promoting moves the champion's alias, audited with the A/B result.
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cairn.domain.errors import Conflict, Invalid, NotFound
from cairn.domain.experiments import METRICS, baseline_variant
from cairn.domain.models import ModelFile
from cairn.domain.production import NewPrediction, Variant
from cairn.services.aliases import AliasService
from cairn.services.blobs import BlobService
from cairn.services.experiments import ExperimentService
from cairn.services.production import EndpointService, PredictionService
from cairn.services.registry import RegistryService
from cairn.store.database import Database

P = "shop"
T0 = datetime(2026, 1, 1, 10, tzinfo=UTC)

ROW = {"alcohol": 13.0, "proline": 700.0}


@dataclass
class Lab:
    aliases: AliasService
    endpoints: EndpointService
    predictions: PredictionService
    experiments: ExperimentService

    def traffic(
        self,
        variant: str,
        version: int,
        n: int,
        *,
        accuracy: float = 0.8,
        latency: tuple[float, float] = (50.0, 10.0),
        error_rate: float = 0.0,
        seed: int = 0,
    ) -> None:
        """``n`` predictions of a variant with feedback; each right with ``accuracy``."""
        rng = random.Random(seed)
        records, actuals = [], {}
        for i in range(n):
            request = f"{variant}-{seed}-{i}"
            truth = rng.randrange(3)
            output = truth if rng.random() < accuracy else (truth + 1) % 3
            failed = rng.random() < error_rate
            records.append(
                NewPrediction(
                    request,
                    ROW,
                    None if failed else output,
                    at=T0 + timedelta(seconds=i),
                    latency_ms=max(0.0, rng.gauss(*latency)),
                    error="failed" if failed else None,
                    variant=variant,
                )
            )
            actuals[request] = truth
        for start in range(0, n, 1000):
            self.predictions.log_predictions(
                P, f"wine:{version}", records[start : start + 1000], endpoint="churn"
            )
        self.predictions.log_feedback(P, actuals)


@pytest.fixture
def lab(db_url: str, tmp_path: Path) -> Iterator[Lab]:
    db = Database(db_url, artifacts=str(tmp_path / "blobs"))
    registry = RegistryService(db, BlobService(db))
    model = registry.blobs.put(io.BytesIO(b"a model"))  # never loaded: a placeholder
    for _ in range(2):
        registry.register_version(
            P, "wine", [ModelFile("model.pkl", model.digest, model.size)], flavor="sklearn"
        )
    aliases = AliasService(db, registry)
    aliases.set_alias("wine", "production", 1, project=P)
    aliases.set_alias("wine", "staging", 2, project=P)
    endpoints = EndpointService(db, registry)
    endpoints.create(
        P,
        "churn",
        [Variant("champion", "wine@production", 50), Variant("challenger", "wine@staging", 50)],
    )
    yield Lab(
        aliases,
        endpoints,
        PredictionService(db, registry),
        ExperimentService(db, registry, aliases),
    )
    db.close()


def by_name(report: Any) -> dict[str, Any]:
    return {o.variant: o for o in report.variants}


def test_a_clearly_better_challenger_is_significant(lab: Lab) -> None:
    lab.traffic("champion", 1, 400, accuracy=0.70, seed=1)
    lab.traffic("challenger", 2, 400, accuracy=0.85, seed=2)
    report = lab.experiments.ab_report(P, "churn", metric="accuracy")
    assert (report.baseline, report.kind, report.direction) == ("champion", "rate", "higher")
    outcomes = by_name(report)
    champion, challenger = outcomes["champion"], outcomes["challenger"]
    assert champion.n == challenger.n == 400
    assert champion.versions == [1] and challenger.versions == [2]
    assert champion.value == pytest.approx(champion.successes / 400)
    assert champion.interval.low < champion.value < champion.interval.high
    assert champion.p_value is None  # the baseline is not compared with itself
    assert challenger.significant and challenger.better
    assert challenger.p_value < 1e-3
    assert challenger.difference == pytest.approx(challenger.value - champion.value)
    assert challenger.difference_interval.low > 0
    assert report.winner == "challenger"
    # the default effect to detect: 10% of the baseline's rate
    assert report.mde == pytest.approx(0.1 * champion.value)
    assert challenger.needed > 100
    assert challenger.more_needed == max(0, challenger.needed - 400)
    assert "winner: challenger" in report.summary


def test_two_equal_variants_are_not_significant(lab: Lab) -> None:
    lab.traffic("champion", 1, 300, accuracy=0.8, seed=3)
    lab.traffic("challenger", 2, 300, accuracy=0.8, seed=4)
    report = lab.experiments.ab_report(P, "churn")
    challenger = by_name(report)["challenger"]
    assert challenger.p_value is not None and challenger.p_value > 0.05
    assert not challenger.significant and report.winner is None
    # To see an effect of 0.01 from 0.8 needs far more than 300 per variant.
    small = lab.experiments.ab_report(P, "churn", mde=0.01)
    assert by_name(small)["challenger"].more_needed > 10_000


def test_means_by_welch_latency_and_error_rate(lab: Lab) -> None:
    lab.traffic("champion", 1, 200, latency=(60.0, 15.0), error_rate=0.10, seed=5)
    lab.traffic("challenger", 2, 200, latency=(45.0, 15.0), error_rate=0.02, seed=6)
    latency = lab.experiments.ab_report(P, "churn", metric="latency")
    challenger = by_name(latency)["challenger"]
    assert latency.kind == "mean" and latency.direction == "lower"
    assert challenger.significant and challenger.better and challenger.difference < 0
    assert challenger.sd == pytest.approx(15.0, rel=0.2)
    assert latency.winner == "challenger"

    errors = lab.experiments.ab_report(P, "churn", metric="error_rate")
    assert by_name(errors)["challenger"].better and errors.winner == "challenger"

    with pytest.raises(Invalid):
        lab.experiments.ab_report(P, "churn", metric="vibes")
    with pytest.raises(Invalid):
        lab.experiments.ab_report(P, "churn", mde=-1.0)
    with pytest.raises(Invalid):
        lab.experiments.ab_report(P, "churn", baseline="nobody")
    with pytest.raises(NotFound):
        lab.experiments.ab_report(P, "nope")
    empty = lab.experiments.ab_report(P, "churn", since=T0 + timedelta(days=1))
    assert all(o.n == 0 and o.value is None for o in empty.variants)
    assert set(METRICS) >= {"accuracy", "error_rate", "latency"}


def test_promote_moves_the_champions_alias_with_the_ab_result(lab: Lab) -> None:
    lab.traffic("champion", 1, 300, accuracy=0.7, seed=7)
    lab.traffic("challenger", 2, 300, accuracy=0.9, seed=8)
    done = lab.experiments.promote(P, "churn", "challenger", reason="two weeks", actor="lee")
    assert (done.model, done.alias, done.from_version, done.to_version) == (
        "wine",
        "production",
        1,
        2,
    )
    current = lab.aliases.resolve_alias("wine", "production", project=P)
    assert current is not None and current.version == 2
    move = lab.aliases.history("wine", "production", project=P)[-1]
    assert (move.from_version, move.to_version, move.actor) == (1, 2, "lee")
    assert move.reason is not None
    assert move.reason.startswith("two weeks.") and "winner: challenger" in move.reason
    assert done.report is not None and done.report.winner == "challenger"


def test_promote_refuses_what_it_cannot_do(lab: Lab) -> None:
    with pytest.raises(Invalid):
        lab.experiments.promote(P, "churn", "nobody")
    with pytest.raises(Conflict):
        lab.experiments.promote(P, "churn", "champion")
    lab.endpoints.create(
        P, "pinned", [Variant("champion", "wine:1", 50), Variant("next", "wine:2", 50)]
    )
    with pytest.raises(Conflict, match="not an alias"):
        lab.experiments.promote(P, "pinned", "next")


def test_the_baseline_is_the_champion_else_the_heaviest_variant() -> None:
    from cairn.domain.production import Endpoint

    now = datetime.now(UTC)
    plain = Endpoint(P, "e", "", [Variant("a", "m:1", 10), Variant("b", "m:2", 90)], {}, now, now)
    assert baseline_variant(plain).name == "b"
    named = Endpoint(
        P, "e", "", [Variant("champion", "m:1", 10), Variant("b", "m:2", 90)], {}, now, now
    )
    assert baseline_variant(named).name == "champion"
