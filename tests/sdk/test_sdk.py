"""The SDK suite: every test runs embedded (SQLite file) and over HTTP (real server)."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import cairn
from cairn.domain.ids import is_ulid


def test_run_lifecycle(sdk_uri: str) -> None:
    with cairn.start_run(
        name="baseline", params={"lr": 0.01, "layers": 3}, tags={"team": "nlp"}, experiment="sgd"
    ) as run:
        assert is_ulid(run.id)
        for step in range(50):
            run.log({"loss": 1 / (step + 1), "acc": step / 50}, step=step)
        run.set_tags({"stage": "dev"})
        run.note("first try")
        run.note("lr looks too high")
    got = cairn.get_run(run.id)
    assert got.status is cairn.RunStatus.FINISHED
    assert got.name == "baseline" and got.experiment == "sgd"
    assert got.params == {"lr": "0.01", "layers": "3"}
    assert got.tags == {"team": "nlp", "stage": "dev"}
    assert got.notes == "first try\n\nlr looks too high"
    loss = got.metrics["loss"]
    assert (loss.count, loss.last, loss.last_step, loss.min, loss.max) == (
        50,
        1 / 50,
        49,
        1 / 50,
        1.0,
    )
    assert got.end_time is not None and got.end_time >= got.start_time


def test_metric_values_nan_and_inf_are_kept(sdk_uri: str) -> None:
    with cairn.start_run() as run:
        run.log({"x": 1.0}, step=0)
        run.log({"x": math.nan}, step=1)
        run.log({"x": math.inf}, step=2)
        run.log({"x": -math.inf}, step=3)
    values = [p.value for p in cairn.get_metric_history(run.id, "x").points]
    assert values[0] == 1.0 and math.isnan(values[1])
    assert values[2:] == [math.inf, -math.inf]
    summary = cairn.get_run(run.id).metrics["x"]
    assert summary.last == -math.inf and summary.min == -math.inf and summary.max == math.inf


def test_steps_default_to_one_past_the_last(sdk_uri: str) -> None:
    with cairn.start_run() as run:
        run.log({"a": 1})
        run.log({"a": 2})
        run.log({"a": 3}, step=10)
        run.log({"a": 4})
    steps = [p.step for p in cairn.get_metric_history(run.id, "a").points]
    assert steps == [0, 1, 10, 11]


def test_history_downsampling_keeps_spikes(sdk_uri: str) -> None:
    with cairn.start_run() as run:
        for step in range(5000):
            run.log({"loss": 100.0 if step == 3217 else math.sin(step / 50)}, step=step)
    history = cairn.get_metric_history(run.id, "loss", max_points=100)
    assert len(history.points) <= 100 and history.downsampled
    assert history.total_count == 5000
    assert max(p.value for p in history.points) == 100.0
    steps = [p.step for p in history.points]
    assert steps == sorted(steps)


def test_params_are_immutable(sdk_uri: str) -> None:
    with cairn.start_run(params={"lr": 0.1}) as run:
        run.log_params({"lr": 0.1, "batch": 32})  # the same value again is fine
        with pytest.raises(cairn.Conflict) as err:
            run.log_params({"lr": 0.2})
        assert err.value.details["field"] == "params.lr"
    assert cairn.get_run(run.id).params == {"lr": "0.1", "batch": "32"}


def test_exception_ends_run_failed_with_the_error(sdk_uri: str) -> None:
    with pytest.raises(ZeroDivisionError), cairn.start_run(name="crash") as run:
        run.log({"loss": 1.0}, step=0)
        _ = 1 / 0
    got = cairn.get_run(run.id)
    assert got.status is cairn.RunStatus.FAILED
    assert got.error is not None and "ZeroDivisionError" in got.error
    assert got.metrics["loss"].count == 1


def test_child_runs_record_their_parent(sdk_uri: str) -> None:
    with cairn.start_run(name="pipeline") as parent:
        with parent.child("prepare") as step1:
            step1.log({"rows": 100})
        with parent.child("train") as step2:
            step2.log({"loss": 0.5})
    assert cairn.get_run(step1.id).parent_id == parent.id
    kids = cairn.search_runs(f"parent_id = '{parent.id}'", order_by=["start_time"])
    assert [r.name for r in kids] == ["prepare", "train"]


def test_search_filters_orders_and_pages(sdk_uri: str) -> None:
    ids = []
    for i in range(12):
        with cairn.start_run(
            name=f"r{i}", params={"p": f"v{i % 3}"}, tags={"odd": str(i % 2)}
        ) as run:
            run.log({"acc": i / 12}, step=0)
        ids.append(run.id)
    found = cairn.search_runs(
        "metrics.acc >= 0.5 and params.p = 'v0'", order_by=["metrics.acc desc"]
    )
    assert [r.name for r in found] == ["r9", "r6"]
    seen, cursor = [], None
    while True:
        page = cairn.search_runs(order_by=["metrics.acc"], limit=5, cursor=cursor)
        seen += [r.id for r in page]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == ids
    frame = cairn.search_runs("tags.odd = '1'", order_by="name").to_pandas()
    assert list(frame["name"]) == ["r1", "r11", "r3", "r5", "r7", "r9"]
    assert "metrics.acc" in frame.columns and "params.p" in frame.columns


def test_malformed_search_names_the_column(sdk_uri: str) -> None:
    with pytest.raises(cairn.Invalid) as err:
        cairn.search_runs("metrics.acc >> 1")
    assert err.value.details["column"] == 14


def test_bad_input_is_refused_at_once(sdk_uri: str) -> None:
    with cairn.start_run() as run:
        with pytest.raises(cairn.Invalid) as err:
            run.log({"bad key!": 1.0})
        assert "metric key" in err.value.message
        with pytest.raises(cairn.Invalid) as err:
            run.log({"loss": "high"})
        assert err.value.field == "metrics.loss"
        with pytest.raises(cairn.Invalid):
            run.log({"loss": 1.0}, step=1.5)  # type: ignore[arg-type]
        with pytest.raises(cairn.Invalid):
            run.log_params({"p": "x" * 7000})
        run.log({"loss": 2.0}, step=0)
    assert cairn.get_run(run.id).metrics["loss"].count == 1
    with pytest.raises(cairn.Invalid):
        cairn.start_run(params={"": 1})


def test_unknown_run_is_not_found(sdk_uri: str) -> None:
    with pytest.raises(cairn.NotFound):
        cairn.get_run("01JD0000000000000000000000")


def test_capture_records_where_the_run_came_from(sdk_uri: str) -> None:
    with cairn.start_run() as run:
        pass
    got = cairn.get_run(run.id)
    assert got.command and "python" in got.command
    assert got.environment is not None
    assert got.environment["python_version"].startswith(f"{sys.version_info.major}.")
    assert "pytest" in got.environment["packages"]
    with cairn.start_run(capture=False) as bare:
        pass
    got = cairn.get_run(bare.id)
    assert got.command is None and got.environment is None and got.git is None


def test_system_metrics_are_sampled_while_the_run_runs(sdk_uri: str) -> None:
    import time

    with cairn.start_run(system_metrics=0.05) as run:
        time.sleep(0.3)
    metrics = cairn.get_run(run.id).metrics
    assert metrics["system/rss_mb"].count >= 2
    assert metrics["system/rss_mb"].last > 1
    assert "system/cpu_percent" in metrics


def test_set_tracking_uri_switches_stores(sdk_uri: str, tmp_path: Path) -> None:
    with cairn.start_run(name="here") as first:
        pass
    cairn.set_tracking_uri(tmp_path / "other")
    with cairn.start_run(name="there") as second:
        pass
    assert cairn.get_run(second.id).name == "there"
    with pytest.raises(cairn.NotFound):
        cairn.get_run(first.id)
    cairn.set_tracking_uri(sdk_uri)
    assert cairn.get_run(first.id).name == "here"


def test_explicit_client(sdk_uri: str) -> None:
    client = cairn.Client(sdk_uri, project="explicit")
    try:
        with client.start_run("c1") as run:
            run.log({"m": 1.0}, step=0)
        assert client.get_run(run.id).project == "explicit"
        assert any(p.project.name == "explicit" for p in client.list_projects())
    finally:
        client.close()


def test_runs_open_at_exit_are_flushed_and_killed(sdk_uri: str, tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import cairn
        cairn.set_tracking_uri({sdk_uri!r})
        cairn.set_project("exit-test")
        run = cairn.start_run(name="left-open")
        for i in range(1000):
            run.log({{"loss": 1.0 / (i + 1)}}, step=i)
        print(run.id)
    """)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    run = cairn.get_run(result.stdout.strip())
    assert run.status is cairn.RunStatus.KILLED
    assert run.metrics["loss"].count == 1000


def test_no_run_is_started_implicitly() -> None:
    assert not hasattr(cairn, "log")
    assert not hasattr(cairn, "log_metric")


def test_unreachable_server_never_blocks_training(tmp_path: Path) -> None:
    client = cairn.Client("http://127.0.0.1:9", project="away")
    try:
        run = client.start_run("offline", capture=False)
        for step in range(100):
            run.log({"loss": 1.0}, step=step)  # returns at once, never raises
        with pytest.raises(cairn.Unavailable):
            client.flush(timeout=0.5)
    finally:
        client.close(timeout=0.1)


def test_http_path_loads_neither_store_nor_web_stack(server: str) -> None:
    script = textwrap.dedent(f"""
        import sys, cairn
        cairn.set_tracking_uri({server!r})
        with cairn.start_run(capture=False) as run:
            run.log({{"x": 1.0}})
        cairn.get_run(run.id)
        loaded = [m for m in ("cairn.store", "cairn.services", "cairn.api", "sqlalchemy",
                              "fastapi", "alembic") if m in sys.modules]
        print(",".join(loaded))
    """)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def _log_in_forked_child(parent_run_id: str, queue: object) -> None:
    with cairn.start_run(name="forked", parent=parent_run_id) as run:
        run.log({"x": 1.0}, step=0)
    cairn.flush()  # a forked child leaves through os._exit: no atexit handlers
    queue.put(run.id)  # type: ignore[attr-defined]


def test_a_forked_child_logs_through_its_own_sender(sdk_uri: str) -> None:
    import multiprocessing

    with cairn.start_run(name="parent") as parent:
        for step in range(100):
            parent.log({"loss": 1.0}, step=step)
        context = multiprocessing.get_context("fork")
        queue = context.Queue()
        child = context.Process(target=_log_in_forked_child, args=(parent.id, queue))
        child.start()
        child_id = queue.get(timeout=60)
        child.join(timeout=60)
        assert child.exitcode == 0
    assert cairn.get_run(child_id).metrics["x"].count == 1
    assert cairn.get_run(child_id).parent_id == parent.id
    assert cairn.get_run(parent.id).metrics["loss"].count == 100  # nothing sent twice


def test_numpy_steps_and_values_are_accepted(sdk_uri: str) -> None:
    import numpy as np

    with cairn.start_run() as run:
        for step in np.arange(3):
            run.log({"loss": np.float32(0.5) * step, "n": np.int64(step)}, step=step)
        with pytest.raises(cairn.Invalid):
            run.log({"loss": 1.0}, step=True)  # type: ignore[arg-type]
    history = cairn.get_metric_history(run.id, "loss")
    assert [p.step for p in history.points] == [0, 1, 2]
    assert [p.value for p in history.points] == [0.0, 0.5, 1.0]
