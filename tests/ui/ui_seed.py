"""A small, realistic project logged through the SDK, for the UI tests to look at.

Wine data in two dataset batches, a three-trial sweep with figures, tables, JSON and
logs as artifacts, a failed run, a run still running, and a registered model with two
versions whose ``production`` alias moved.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

PROJECT = "lab"  # the demo (cairn.demo) fills "demo" beside it
MODEL = "wine-clf"


@dataclass
class Seeded:
    trials: list[str] = field(default_factory=list)
    failed: str = ""
    live: str = ""
    live_run: Any = None  # the handle of the run still running, to log more while a page is open
    client: Any = None


def seed_demo(url: str) -> Seeded:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    from sklearn.datasets import load_wine
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import cairn

    client = cairn.Client(url, project=PROJECT)
    wine = load_wine(as_frame=True).frame
    wine["quality"] = pd.cut(wine["alcohol"], 3, labels=["low", "mid", "high"]).astype(str)
    client.log_dataset("wine", wine.iloc[:110], batch="2024-11", message="First delivery")
    shifted = wine.copy()
    shifted["alcohol"] = shifted["alcohol"] + 0.6  # a drifted column for the diff page
    client.log_dataset("wine", shifted, batch="2024-12", message="Second delivery, recalibrated")

    seeded = Seeded(client=client)
    features = wine.drop(columns=["target", "quality"])
    for i, (lr, c, solver) in enumerate(
        [(0.01, 0.5, "lbfgs"), (0.05, 1.0, "lbfgs"), (0.1, 2.0, "saga")]
    ):
        with client.start_run(
            f"trial-{i}",
            params={"lr": lr, "C": c, "solver": solver, "epochs": 120},
            tags={"team": "vision", "stage": "sweep"},
            experiment="sweep",
            notes=f"Trial {i} of the learning-rate sweep.\nWatch the validation loss.",
        ) as run:
            run.use_dataset("wine:2", role="train")
            losses = []
            for step in range(120):
                loss = (
                    1.2 * math.exp(-lr * 4 * step / 10) + 0.05 * math.sin(step / 3) ** 2 + 0.02 * i
                )
                losses.append(loss)
                run.log({"loss": loss, "acc": 1 - loss / 1.5, "val/loss": loss * 1.1}, step=step)
            fig, ax = plt.subplots(figsize=(4, 2.5))
            ax.plot(losses)
            ax.set_title(f"loss, trial {i}")
            run.log_figure(fig, "plots/loss.png")
            plt.close(fig)
            run.log_table(wine.head(40), "eval/predictions.csv")
            run.log_json({"lr": lr, "C": c, "classes": [0, 1, 2]}, "config.json")
            run.log_text(
                "".join(f"epoch {e} loss {losses[e]:.4f}\n" for e in range(120)), "logs/train.log"
            )
            if i >= 1:
                model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=500))
                model.fit(features, wine["target"])
                run.register_model(MODEL, model, input_example=features.head(5))
        seeded.trials.append(run.id)

    failed = client.start_run(
        "diverged", params={"lr": 1.0, "C": 1.0, "solver": "sgd"}, experiment="sweep"
    )
    failed.log({"loss": 4.0}, step=0)
    failed.log({"loss": 9.5}, step=1)
    failed.end("failed", error="loss diverged at step 1")
    seeded.failed = failed.id

    live = client.start_run("live-trial", params={"lr": 0.02, "C": 1.0, "solver": "lbfgs"})
    for step in range(30):
        live.log({"loss": 1 / (step + 1)}, step=step)
    seeded.live = live.id
    seeded.live_run = live

    client.set_alias(MODEL, "staging", 1, reason="first candidate")
    client.set_alias(MODEL, "production", 1, reason="first deploy")
    client.set_alias(MODEL, "staging", 2, reason="retrained with C=2")
    client.flush()
    return seeded
