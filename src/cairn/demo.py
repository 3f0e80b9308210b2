"""A project with realistic history, built from scikit-learn's bundled datasets through the
SDK, so a new user (and the UI tests) have something worth looking at.

What ``fill(client)`` logs, deterministically (every random draw is seeded):

- dataset versions arriving in batches: ``wine`` (3 deliveries), ``breast-cancer`` (2),
  ``digits`` (1);
- a hyperparameter sweep on wine: a parent run and one child per trial, each with metrics
  per epoch, a figure and a CSV of its predictions;
- registered versions of ``wine-clf`` with semver bumps, approvals and a rejection, and the
  ``staging``/``production`` aliases moved over time, one rollback included; a
  ``cancer-clf`` model and an evaluation run that used a registered version;
- production traffic on the ``wine`` endpoint (champion/challenger), predictions over the
  last 12 hours with latencies, the inputs drifting in the last hours, and feedback.

Example: ``cairn demo --uri http://127.0.0.1:5000``, or ``fill(cairn.Client(uri,
project="demo"))`` from Python.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from cairn.domain.errors import AlreadyExists

if TYPE_CHECKING:
    from cairn.client.fluent import Client

PROJECT = "demo"
WINE_MODEL = "wine-clf"
CANCER_MODEL = "cancer-clf"
ENDPOINT = "wine"
SEED = 7
EPOCHS = 30
SWEEP = [  # (alpha, learning-rate schedule, eta0)
    (0.0001, "optimal", 0.01),
    (0.001, "optimal", 0.01),
    (0.01, "constant", 0.01),
    (0.0005, "adaptive", 0.05),
    (0.005, "adaptive", 0.1),
    (0.05, "constant", 0.001),
    (0.0001, "invscaling", 0.5),
    (0.002, "optimal", 0.01),
]


@dataclass
class DemoResult:
    """The ids and refs the demo made, for a caller (or a test) to link to."""

    project: str
    sweep: str = ""  # the parent run
    trials: list[str] = field(default_factory=list)
    evaluation: str = ""
    datasets: list[str] = field(default_factory=list)  # "wine:3", ...
    models: list[str] = field(default_factory=list)  # "wine-clf:1", ...
    endpoint: str = ENDPOINT
    predictions: int = 0
    feedback: int = 0


def fill(
    client: Client, *, now: datetime | None = None, say: Callable[[str], None] = print
) -> DemoResult:
    """Log the demo's history into the client's project.

    Example: ``fill(cairn.Client("http://127.0.0.1:5000", project="demo"))``.
    """
    import matplotlib

    matplotlib.use("Agg")
    from sklearn.datasets import load_breast_cancer, load_digits, load_wine  # type: ignore[import-untyped]

    result = DemoResult(project=client.project or PROJECT)
    for summary in client.list_projects():  # a second demo would tangle with the first
        if summary.project.name == result.project and summary.run_count:
            raise AlreadyExists(
                f"project {result.project!r} already has runs: pick another with --project",
                details={"project": result.project},
            )
    wine = load_wine(as_frame=True).frame
    cancer = load_breast_cancer(as_frame=True).frame
    digits = load_digits(as_frame=True).frame

    say("datasets: wine, breast-cancer, digits, arriving in batches")
    for batch, (start, stop) in enumerate([(0, 60), (0, 120), (0, len(wine))], start=1):
        version = client.log_dataset(
            "wine", wine.iloc[start:stop], batch=f"2026-0{batch}", message=f"Delivery {batch}"
        )
        result.datasets.append(version.ref)
    for batch, stop in enumerate([300, len(cancer)], start=1):
        version = client.log_dataset(
            "breast-cancer", cancer.iloc[:stop], batch=f"2026-0{batch}", message="Clinic export"
        )
        result.datasets.append(version.ref)
    version = client.log_dataset("digits", digits.iloc[:600], batch="2026-01", message="Scans")
    result.datasets.append(version.ref)

    say(f"sweep: {len(SWEEP)} trials on wine, nested under one parent run")
    wine_ref = result.datasets[2]
    models = _sweep(client, wine, wine_ref, result)
    say("registry: semver bumps, approvals, aliases moved over time, one rollback")
    _registry(client, models, result)
    _cancer(client, cancer, result.datasets[4], result)
    say("production: the wine endpoint, champion and challenger, 12 hours of traffic")
    _traffic(client, wine, now or datetime.now(UTC), result)
    client.flush()
    say(
        f"done: {len(result.trials)} trials, {len(result.models)} model versions, "
        f"{result.predictions} predictions, {result.feedback} labels in project "
        f"{result.project!r}"
    )
    return result


def _split(frame: Any) -> tuple[Any, Any, Any, Any]:
    from sklearn.model_selection import train_test_split  # type: ignore[import-untyped]

    features = frame.drop(columns=["target"])
    out: tuple[Any, Any, Any, Any] = tuple(
        train_test_split(
            features, frame["target"], test_size=0.3, random_state=SEED, stratify=frame["target"]
        )
    )
    return out


def _sweep(client: Client, wine: Any, wine_ref: str, result: DemoResult) -> list[Any]:
    """One parent run, a child per trial; returns the fitted pipelines, trial order."""
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd  # type: ignore[import-untyped]
    from sklearn.linear_model import SGDClassifier  # type: ignore[import-untyped]
    from sklearn.metrics import accuracy_score, log_loss  # type: ignore[import-untyped]
    from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

    x_train, x_test, y_train, y_test = _split(wine)
    scaler = StandardScaler().fit(x_train)
    a, b = scaler.transform(x_train), scaler.transform(x_test)
    classes = np.unique(wine["target"])
    fitted = []
    with client.start_run(
        "wine-sweep",
        params={"search": "grid", "trials": len(SWEEP), "epochs": EPOCHS},
        tags={"team": "oenology", "stage": "sweep"},
        experiment="wine-sweep",
        notes="Grid search over SGD's regularisation and learning-rate schedule.",
        capture=False,
    ) as parent:
        parent.use_dataset(wine_ref, role="train")
        result.sweep = parent.id
        finals = []
        for i, (alpha, schedule, eta0) in enumerate(SWEEP):
            params = {"alpha": alpha, "learning_rate": schedule, "eta0": eta0, "epochs": EPOCHS}
            with parent.child(
                f"trial-{i}",
                params=params,
                tags={"stage": "sweep"},
                experiment="wine-sweep",
                capture=False,
            ) as run:
                run.use_dataset(wine_ref, role="train")
                clf = SGDClassifier(
                    loss="log_loss",
                    alpha=alpha,
                    learning_rate=schedule,
                    eta0=eta0,
                    random_state=SEED + i,
                )
                curve = []
                for epoch in range(EPOCHS):
                    clf.partial_fit(a, y_train, classes=classes)
                    train_loss = log_loss(y_train, clf.predict_proba(a), labels=classes)
                    val_loss = log_loss(y_test, clf.predict_proba(b), labels=classes)
                    val_acc = accuracy_score(y_test, clf.predict(b))
                    curve.append(val_loss)
                    run.log(
                        {"train/loss": train_loss, "val/loss": val_loss, "val/accuracy": val_acc},
                        step=epoch,
                    )
                fig, ax = plt.subplots(figsize=(4.5, 2.6))
                ax.plot(curve, color="#2f6f5e")
                ax.set_title(f"validation loss, trial {i}")
                ax.set_xlabel("epoch")
                fig.tight_layout()
                run.log_figure(fig, "plots/val_loss.png")
                plt.close(fig)
                predictions = pd.DataFrame(
                    {"actual": y_test.to_numpy(), "predicted": clf.predict(b)}
                )
                run.log_table(predictions, "eval/predictions.csv")
                finals.append(float(val_acc))
                result.trials.append(run.id)
            fitted.append(_pipeline(scaler, clf))
        parent.log({"best/val_accuracy": max(finals)}, step=0)
        parent.set_tags({"best_trial": f"trial-{int(np.argmax(finals))}"})
        table = pd.DataFrame(
            {"trial": range(len(SWEEP)), "alpha": [s[0] for s in SWEEP], "val_accuracy": finals}
        )
        parent.log_table(table, "sweep/summary.csv")
    return fitted


def _pipeline(scaler: Any, clf: Any) -> Any:
    from sklearn.pipeline import Pipeline  # type: ignore[import-untyped]

    return Pipeline([("scale", scaler), ("clf", clf)])


def _registry(client: Client, models: list[Any], result: DemoResult) -> None:
    """Three versions of wine-clf from the sweep's trials, moved through the aliases."""
    wine = _wine_frame()
    example = wine.drop(columns=["target"]).head(5)
    bumps = [None, "minor", "patch"]
    for trial, (run_id, model, bump) in enumerate(
        zip(result.trials[1:], models[1:], bumps, strict=False)
    ):
        version = client.register_model(
            WINE_MODEL,
            model,
            run_id=run_id,
            input_example=example,
            bump=bump,
            description=f"SGD logistic regression from trial {trial + 1} of the sweep.",
            tags={"trial": trial + 1},
        )
        result.models.append(version.ref)
    v1, v2, v3 = (int(ref.rsplit(":", 1)[1]) for ref in result.models[:3])
    client.approve(f"{WINE_MODEL}:{v1}", "Validated on the holdout set")
    client.set_alias(WINE_MODEL, "staging", v1, reason="first candidate")
    client.set_alias(WINE_MODEL, "production", v1, reason="first deploy")
    client.approve(f"{WINE_MODEL}:{v2}", "Beats v1 on validation accuracy")
    client.set_alias(WINE_MODEL, "staging", v2, reason="retrained on the third delivery")
    client.set_alias(WINE_MODEL, "production", v2, reason="promoted after review")
    client.rollback(WINE_MODEL, "production", reason="latency regression on the new batch")
    client.reject(f"{WINE_MODEL}:{v3}", "Unstable learning rate")
    client.set_alias(WINE_MODEL, "staging", v2, reason="challenger for the A/B test")


def _wine_frame() -> Any:
    from sklearn.datasets import load_wine

    return load_wine(as_frame=True).frame


def _cancer(client: Client, cancer: Any, ref: str, result: DemoResult) -> None:
    """A breast-cancer model and an evaluation run that used a registered wine version."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x_train, x_test, y_train, y_test = _split(cancer)
    with client.start_run(
        "cancer-baseline",
        params={"C": 1.0, "max_iter": 500},
        tags={"team": "clinic"},
        experiment="cancer",
        capture=False,
    ) as run:
        run.use_dataset(ref, role="train")
        model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=500))
        model.fit(x_train, y_train)
        run.log(
            {
                "val/accuracy": float(accuracy_score(y_test, model.predict(x_test))),
                "val/auc": float(roc_auc_score(y_test, model.predict_proba(x_test)[:, 1])),
            },
            step=0,
        )
        version = run.register_model(CANCER_MODEL, model, input_example=x_test.head(5))
        result.models.append(version.ref)
    client.approve(version.ref, "Sensitivity above 0.95")
    client.set_alias(CANCER_MODEL, "production", version.version, reason="first deploy")
    with client.start_run(
        "wine-evaluation", tags={"stage": "evaluation"}, experiment="wine-sweep", capture=False
    ) as evaluation:
        evaluation.use_model(f"{WINE_MODEL}@production", role="evaluate")
        evaluation.use_dataset(result.datasets[2], role="evaluate")
        evaluation.log({"holdout/accuracy": 0.96}, step=0)
        result.evaluation = evaluation.id


def _traffic(client: Client, wine: Any, now: datetime, result: DemoResult) -> None:
    """12 hours of predictions on the wine endpoint, 80/20 between production and
    staging; the alcohol readings drift in the last 3 hours; feedback for most."""
    import numpy as np

    rng = np.random.default_rng(SEED)
    client.create_endpoint(
        ENDPOINT,
        [f"champion={WINE_MODEL}@production:80", f"challenger={WINE_MODEL}@staging:20"],
        description="Cultivar classifier behind the tasting app",
        settings={
            "task": "classification",
            "alerts": {"max_latency_p95_ms": 55, "min_accuracy": 0.8, "min_samples": 8},
            "drift": {"psi": 1.0, "ks": 0.5, "min_samples": 25},
        },
    )
    loaded = {
        alias: client.load_model(f"{WINE_MODEL}@{alias}").model
        for alias in ("production", "staging")
    }
    features = wine.drop(columns=["target"])
    start = (now - timedelta(hours=12)).replace(minute=0, second=0, microsecond=0)
    for hour in range(12):
        drifted = hour >= 9
        for variant, alias, share in (
            ("champion", "production", 0.8),
            ("challenger", "staging", 0.2),
        ):
            n = int(40 * share) + int(rng.integers(0, 6))
            rows = features.sample(n=n, random_state=int(rng.integers(0, 2**31)))
            truth = wine.loc[rows.index, "target"].to_numpy()
            if drifted:
                rows = rows.assign(alcohol=rows["alcohol"] + 1.4, proline=rows["proline"] * 1.3)
            outputs = loaded[alias].predict(rows)
            base = 18.0 if variant == "champion" else 24.0
            latencies = rng.gamma(4.0, base / 4.0, size=n) + (6.0 if drifted else 0.0)
            at = start + timedelta(hours=hour, minutes=int(rng.integers(1, 55)))
            ids = client.log_predictions(
                f"{WINE_MODEL}@{alias}",
                rows,
                [int(o) for o in outputs],
                latencies_ms=[round(float(v), 2) for v in latencies],
                endpoint=ENDPOINT,
                variant=variant,
                at=at,
            )
            result.predictions += len(ids)
            labeled = int(n * 0.85)
            result.feedback += client.log_feedback(ids[:labeled], [int(t) for t in truth[:labeled]])
