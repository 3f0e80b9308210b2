"""``cairn serve`` end to end: a real ``cairn server`` and real ``cairn serve`` processes,
iris models trained with scikit-learn and registered through the SDK.

The alias moves while a client keeps sending: answers switch to the new version within
seconds and not one request fails; every prediction reaches Cairn stamped with the
version that answered it. An endpoint splits traffic 90/10 with sticky units and a
shadow whose answers are logged but never returned. ``/metrics`` parses and its counts
add up; ``/readyz`` says what is served.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from promtext import parse, total, value
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

import cairn
from conftest import free_port, start_server, stop_server

pytestmark = pytest.mark.server
PROJECT = "shop"


@dataclass
class World:
    url: str
    client: cairn.Client
    x: pd.DataFrame
    models: dict[int, Any]  # version -> the fitted estimator

    def expected(self, version: int, rows: pd.DataFrame) -> list[int]:
        return [int(p) for p in self.models[version].predict(rows)]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A server with iris:1..3 (logistic C=1, logistic C=0.01, a depth-1 tree), the first
    two approved, ``production`` on 1."""
    proc, url = start_server(str(tmp_path_factory.mktemp("serve-store")))
    client = cairn.Client(url, project=PROJECT)
    x, y = load_iris(return_X_y=True, as_frame=True)
    estimators = [
        LogisticRegression(C=1.0, max_iter=500),
        LogisticRegression(C=0.01, max_iter=500),
        DecisionTreeClassifier(max_depth=1, random_state=0),
    ]
    models = {}
    for estimator in estimators:
        version = client.register_model("iris", estimator.fit(x, y), input_example=x[:3])
        models[version.version] = estimator
    client.approve("iris:1", "holdout 0.97")
    client.approve("iris:2", "holdout 0.93")
    client.set_alias("iris", "production", 1, reason="first release")
    try:
        yield World(url, client, x, models)
    finally:
        client.close()
        stop_server(proc)


@contextmanager
def serve(world: World, *args: str, tmp: Path) -> Iterator[httpx.Client]:
    """``cairn serve ARGS`` as a subprocess, once ``/readyz`` answers 200."""
    port = free_port()
    log_path = tmp / f"serve-{port}.log"
    cmd = [
        sys.executable,
        "-m",
        "cairn",
        "serve",
        *args,
        "--uri",
        world.url,
        "--project",
        PROJECT,
        "--port",
        str(port),
        "--poll-interval",
        "0.2",
    ]
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ))
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "cairn serve never got ready:\n" + (
                log_path.read_text()
            )
            try:
                if http.get("/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        yield http
    finally:
        http.close()
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    # uvicorn shuts down gracefully (the queued predictions are sent), then re-raises SIGTERM.
    assert proc.returncode in (0, -signal.SIGTERM), log_path.read_text()


def logged(world: World, count: int, **filters: Any) -> list[cairn.Prediction]:
    """The predictions Cairn holds, once ``count`` of them arrived (logging is async)."""
    deadline = time.monotonic() + 15
    while True:
        found = world.client.list_predictions(limit=100_000, **filters)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_the_served_version_follows_the_alias_and_no_request_fails(
    world: World, tmp_path: Path
) -> None:
    x = world.x
    with serve(world, "iris@production", tmp=tmp_path) as http:
        rows = x.iloc[:5]
        answer = http.post("/predict", json={"records": rows.to_dict("records")}).json()
        assert (answer["model"], answer["version"], answer["semver"]) == ("iris", 1, "1.0.0")
        assert answer["predictions"] == world.expected(1, rows)
        assert len(answer["request_id"]) == 26 and len(answer["request_ids"]) == 5
        columns = {k: list(v) for k, v in rows.to_dict("list").items()}
        assert (
            http.post("/predict", json={"columns": columns}).json()["predictions"]
            == (answer["predictions"])
        )
        by_lists = http.post("/predict", json={"instances": rows.to_numpy().tolist()}).json()
        assert by_lists["predictions"] == answer["predictions"]
        ready = http.get("/readyz").json()
        assert ready["variants"][0]["ref"] == f"{PROJECT}/iris:1"

        answers: list[tuple[int, dict[str, Any]]] = []
        stop = threading.Event()

        def keep_sending() -> None:
            with httpx.Client(base_url=str(http.base_url), timeout=10) as own:
                i = 0
                while not stop.is_set():
                    row = x.iloc[[i % len(x)]]
                    response = own.post(
                        "/predict",
                        json={"records": row.to_dict("records"), "request_id": f"load-{i}"},
                    )
                    answers.append((response.status_code, response.json() | {"row": i % len(x)}))
                    i += 1

        sender = threading.Thread(target=keep_sending)
        sender.start()
        time.sleep(0.5)
        world.client.set_alias("iris", "production", 2, reason="better recall")
        moved = time.monotonic()
        while not any(a[1].get("version") == 2 for a in list(answers)):
            assert time.monotonic() - moved < 10, "the server never switched to version 2"
            time.sleep(0.05)
        switched_after = time.monotonic() - moved
        time.sleep(0.5)
        stop.set()
        sender.join(10)

        assert switched_after < 5
        assert [status for status, _ in answers] == [200] * len(answers)  # none failed
        versions = [a["version"] for _, a in answers]
        first_two = versions.index(2)
        assert set(versions[:first_two]) == {1} and set(versions[first_two:]) == {2}
        for _, a in answers:
            row = x.iloc[[a["row"]]]
            assert a["predictions"] == world.expected(a["version"], row)
            assert a["semver"] == ("1.0.0" if a["version"] == 1 else "1.0.1")

        samples = parse(http.get("/metrics").text)[1]
        sent = len(answers) + 3
        assert total(samples, "cairn_serve_requests_total", model="iris") == sent
        assert total(samples, "cairn_serve_errors_total") == 0
        assert total(samples, "cairn_serve_request_duration_seconds_count") == sent
        by_version = {
            v: value(samples, "cairn_serve_requests_total", model="iris", version=v, variant="")
            for v in ("1", "2")
        }
        assert by_version == {"1": 3 + first_two, "2": len(answers) - first_two}
        info = {"model": "iris", "version": "2", "semver": "1.0.1", "variant": ""}
        assert value(samples, "cairn_serve_model_info", **info) == 1
        assert http.get("/readyz").json()["variants"][0]["ref"] == f"{PROJECT}/iris:2"
        assert value(samples, "cairn_serve_prediction_log_dropped_total", reason="queue_full") == 0

    # Every row answered reached Cairn, stamped with the version that answered it.
    rows_sent = len(answers) + 15
    stored = logged(world, rows_sent, model="iris")
    assert len(stored) == rows_sent
    version_of = {p.request_id: p.version for p in stored}
    assert {f"load-{i}": a["version"] for i, (_, a) in enumerate(answers)} == {
        f"load-{i}": version_of[f"load-{i}"] for i in range(len(answers))
    }
    first = next(p for p in stored if p.request_id == answer["request_ids"][0])
    assert first.inputs == rows.iloc[0].to_dict() and first.outputs == answer["predictions"][0]
    assert first.latency_ms is not None and first.endpoint is None


def test_an_endpoint_splits_sticky_traffic_and_shadows_quietly(
    world: World, tmp_path: Path
) -> None:
    world.client.set_alias("iris", "production", 2)
    world.client.create_endpoint(
        "churn",
        ["champion=iris@production:90", "challenger=iris:1:10", "next=iris:3:0:shadow"],
    )
    x = world.x
    with serve(world, "--endpoint", "churn", tmp=tmp_path) as http:
        answers = {}
        for i in range(200):
            row = x.iloc[[i % len(x)]]
            body = {"records": row.to_dict("records"), "unit_id": f"customer-{i}"}
            response = http.post("/predict", json=body)
            assert response.status_code == 200, response.text
            answers[f"customer-{i}"] = (i % len(x), response.json())
        for unit in list(answers)[:20]:
            again = http.post(
                "/predict", json={"records": x.iloc[[0]].to_dict("records"), "unit_id": unit}
            ).json()
            assert again["variant"] == answers[unit][1]["variant"]  # sticky

        shares = Counter(a["variant"] for _, a in answers.values())
        assert set(shares) == {"champion", "challenger"} and shares["champion"] > 150
        for row, a in answers.values():
            version = {"champion": 2, "challenger": 1}[a["variant"]]
            assert a["version"] == version and a["model"] == "iris"
            assert a["predictions"] == world.expected(version, x.iloc[[row]])
        status = {v["variant"]: v for v in http.get("/readyz").json()["variants"]}
        assert status["next"]["shadow"] is True and status["next"]["version"] == 3

        served = len(answers) + 20
        deadline = time.monotonic() + 10
        while True:  # shadows run off the request path: let them finish
            samples = parse(http.get("/metrics").text)[1]
            shadows = value(
                samples, "cairn_serve_shadow_requests_total", model="iris", version="3",
                variant="next",
            )  # fmt: skip
            if shadows == served or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert shadows == served
        assert total(samples, "cairn_serve_requests_total", variant="champion") == (
            shares["champion"] + sum(1 for u in list(answers)[:20]
                                     if answers[u][1]["variant"] == "champion")
        )  # fmt: skip

    stored = logged(world, 2 * served, endpoint="churn")
    assert len(stored) == 2 * served
    shadow_rows = [p for p in stored if p.shadow]
    answered_rows = [p for p in stored if not p.shadow]
    assert {(p.variant, p.version) for p in shadow_rows} == {("next", 3)}
    assert sorted(p.request_id for p in shadow_rows) == sorted(p.request_id for p in answered_rows)
    by_id = {p.request_id: p for p in answered_rows}
    for unit, (_row, a) in answers.items():
        record = by_id[a["request_id"]]
        assert (record.variant, record.version, record.unit_id) == (
            a["variant"],
            a["version"],
            unit,
        )
        assert record.outputs == a["predictions"][0]
    tree = {p.request_id: p.outputs for p in shadow_rows}
    for row, a in answers.values():
        assert tree[a["request_id"]] == world.expected(3, x.iloc[[row]])[0]


def test_concurrent_calls_all_answer_and_probes_stay_prompt(world: World, tmp_path: Path) -> None:
    """Six clients at once: calls run on the event loop or in the pool (serving/
    loop_budget.py), every one answers right, and ``/healthz`` never waits long."""
    rows = world.x.to_numpy().tolist()
    expected = world.expected(1, world.x)
    wrong: list[str] = []
    with serve(world, "iris:1", tmp=tmp_path) as http:

        def send(k: int) -> None:
            with httpx.Client(base_url=str(http.base_url), timeout=10) as own:
                for i in range(60):
                    n = (k * 60 + i) % len(rows)
                    answer = own.post("/predict", json={"instances": [rows[n]]})
                    if answer.status_code != 200 or answer.json()["predictions"] != [expected[n]]:
                        wrong.append(f"row {n}: {answer.status_code} {answer.text[:200]}")

        clients = [threading.Thread(target=send, args=(k,)) for k in range(6)]
        for thread in clients:
            thread.start()
        slowest = 0.0
        while any(thread.is_alive() for thread in clients):
            started = time.perf_counter()
            assert http.get("/healthz").status_code == 200
            slowest = max(slowest, time.perf_counter() - started)
            time.sleep(0.005)
        for thread in clients:
            thread.join()
        assert wrong == []
        assert slowest < 1.0
        samples = parse(http.get("/metrics").text)[1]
        assert value(samples, "cairn_serve_requests_total", model="iris", version="1",
                     variant="") == 360  # fmt: skip


def test_serve_refuses_a_reference_that_names_nothing(world: World) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cairn", "serve", "iris@nope", "--uri", world.url,
         "--project", PROJECT, "--port", str(free_port())],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 4, result.stderr
    assert "error (not_found)" in result.stderr and "nope" in result.stderr
    both = subprocess.run(
        [sys.executable, "-m", "cairn", "serve", "iris:1", "--endpoint", "churn"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert both.returncode == 3 and "one of them" in both.stderr
