"""Two builds of ``cairn serve`` side by side: which one adds less to a one-row predict.

The serving figure moves with this VM's speed (a bare predict of the wine forest takes
4 ms one hour and 12 ms the next), so a change is judged against its baseline in the
same run: both servers are started on one store and called in turn, each call paired
with a bare predict just before it, as ``serving_overhead`` does. Prints JSON.

    git worktree add /tmp/base HEAD~1
    .venv/bin/python bench/serving_ab.py --baseline /tmp/base/src [--calls 1500]

``--baseline`` is the ``src`` folder of the other build; it runs on this virtualenv
(``PYTHONPATH``), so only Cairn's own code differs.
"""

from __future__ import annotations

import argparse
import json
import os
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from cairn_production import PROJECT, _cairn_argv, _post_ok, _register
from common import (
    DEFAULT_WORKDIR,
    REGISTRY_ALIAS,
    REGISTRY_MODEL,
    free_port,
    fresh_dir,
    paired_call,
    percentile,
    server_process,
    summary_ms,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--baseline", type=Path, required=True, help="src folder of the other build"
    )
    parser.add_argument("--calls", type=int, default=1500, help="paired calls per build")
    parser.add_argument("--warmup", type=int, default=200)
    args = parser.parse_args(argv)
    if not (args.baseline / "cairn" / "__init__.py").is_file():
        parser.error(f"--baseline {args.baseline} holds no cairn package")

    import httpx

    builds = {"this": None, "baseline": str(args.baseline.resolve())}
    with fresh_dir(DEFAULT_WORKDIR, "serving-ab") as folder, ExitStack() as stack:
        store = folder / "store"
        model, x = _register(store)
        row = x[:1]
        body = json.dumps({"instances": row.tolist()}).encode()
        clients = {}
        for name, src in builds.items():
            port = free_port()
            env = dict(os.environ)
            if src is not None:
                env["PYTHONPATH"] = src
            command = _cairn_argv(
                "serve", f"{REGISTRY_MODEL}@{REGISTRY_ALIAS}", "--port", str(port),
                "--uri", str(store), "--project", PROJECT,
            )  # fmt: skip
            base = f"http://127.0.0.1:{port}"
            stack.enter_context(
                server_process(command, f"{base}/readyz", folder / f"{name}.log", 120, env)
            )
            clients[name] = stack.enter_context(httpx.Client(base_url=base, timeout=30))
        bare: dict[str, list[int]] = {name: [] for name in builds}
        diffs: dict[str, list[float]] = {name: [] for name in builds}
        for i in range(args.warmup + args.calls):
            for name, http in clients.items():  # in turn: both meet the same moment
                bare_ns, served_ns, _ = paired_call(
                    lambda: model.predict(row), lambda h=http: _post_ok(h, "/predict", body)
                )
                if i >= args.warmup:
                    bare[name].append(bare_ns)
                    diffs[name].append((served_ns - bare_ns) / 1e6)
    result: dict[str, Any] = {"calls": args.calls, "baseline_src": builds["baseline"]}
    for name in builds:
        ordered = sorted(diffs[name])
        result[name] = {
            "overhead_p25_ms": round(percentile(ordered, 25), 4),
            "overhead_p50_ms": round(percentile(ordered, 50), 4),
            "overhead_p75_ms": round(percentile(ordered, 75), 4),
            "bare_predict": summary_ms(bare[name]),
        }
    result["saved_p50_ms"] = round(
        result["baseline"]["overhead_p50_ms"] - result["this"]["overhead_p50_ms"], 4
    )
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
