"""The load bench: /score against two yardstick services in the same run (testing.md).

A champion is trained on a 5,000-member cohort into a temporary MLflow store; each service is
started on its own (never two at once, so they do not share the two cores), warmed up with 100
requests and measured over 2,000 at concurrency 1 and 8 by one async httpx client. Then the
overload case: the service with room for 2 requests in flight, 2,000 requests at concurrency 16;
its 503s must come no slower than the bare yardstick's answers at that same concurrency (issue 14;
at 16 clients every answer waits its turn on the event loop, so the like-for-like yardstick is
the bare service under the same 16 clients). The ratio to the bare yardstick at 1 is recorded too.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from chronorisk.bench.harness import peak_rss, write_result
from serving.process import start_server, stop_server

WARMUP, REQUESTS, CONCURRENCY = 100, 2000, (1, 8)
OVERLOAD_SLOTS, OVERLOAD_CONCURRENCY = 2, 16


def _prepare(tmp: Path, log: Callable[[str], None]) -> tuple[dict[str, str], str]:
    """Train a champion into a temporary store and make a key; return the server env and key."""
    from chronorisk.model.product import load_product
    from chronorisk.model.registry import connect
    from chronorisk.synthetic.cohort import load_profile, synthesize
    from serving.keys import KeyStore
    from training.gate import promote
    from training.snapshot import build_snapshot
    from training.train import train_product

    log("serving bench: training a champion on 5,000 members")
    profile = load_profile(Path("experiments/profiles/default.yaml"))
    synthesize(members=5000, seed=7, out_dir=tmp / "cohort", profile=profile, workers=2)
    spec = load_product("diabetes")
    build_snapshot(tmp / "cohort", spec, tmp / "snap.parquet", extract_date=date(2024, 12, 31), pepper=b"bench",
                   progress=False)
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    client = connect(uri)
    version = train_product(spec, tmp / "snap.parquet", artifact_root=tmp / "art", pepper=b"bench").version
    promote(client, "diabetes", spec.gate, tmp / "promotions.jsonl", to_version=version)
    key, _ = KeyStore(tmp / "keys.json").create("bench", ["diabetes"])
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "CHRONORISK_KEYS_FILE": str(tmp / "keys.json"),
           "CHRONORISK_AUDIT_URL": f"sqlite:///{tmp / 'audit.db'}", "CHRONORISK_WORKERS": "1",
           "CHRONORISK_ID_PEPPER": "bench-pepper", "CHRONORISK_MAX_CONCURRENCY": "64",
           "CHRONORISK_ENVIRONMENT": "development", "CHRONORISK_SECRETS_DIR": str(tmp / "secrets")}
    return env, key


async def _load(url: str, body: bytes, headers: dict[str, str], concurrency: int) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: list[int] = []
    errors = 0
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=concurrency)) as client:
        async def one(record: bool) -> None:
            nonlocal errors
            start = time.perf_counter()
            r = await client.post("/score", content=body, headers=headers)
            if record:
                latencies.append(time.perf_counter() - start)
                statuses.append(r.status_code)
                errors += r.status_code != 200

        async def run(n: int, record: bool) -> float:
            queue = iter(range(n))

            async def worker() -> None:
                for _ in queue:
                    await one(record)

            t0 = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return time.perf_counter() - t0

        await run(WARMUP, False)
        wall = await run(REQUESTS, True)
    ms = np.array(latencies) * 1000
    refused = ms[np.array(statuses) == 503]
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "throughput_rps": REQUESTS / wall, "wall_s": wall, "errors": errors, "requests": REQUESTS,
            "refused_503": len(refused),
            **({"refused_503_p50_ms": float(np.percentile(refused, 50)),
                "refused_503_p99_ms": float(np.percentile(refused, 99))} if len(refused) else {})}


def _measured(proc: Any, url: str, body: bytes, headers: dict[str, str], concurrency: int) -> dict[str, Any]:
    """One level's load, with the peak summed RSS of the server's process tree while it ran."""
    with peak_rss(proc.pid) as memory:
        figures = asyncio.run(_load(url, body, headers, concurrency))
    return {**figures, **memory}


def bench_serving(log: Callable[[str], None]) -> Path:
    from serving.examples import standard_applicant

    applicant = standard_applicant()
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as t:
        tmp = Path(t)
        env, key = _prepare(tmp, log)
        score_body = json.dumps({"product": "diabetes", "applicant": applicant}).encode()
        proc, url = start_server("serving.service:ChronoriskService", env, tmp / "score.log")
        try:
            first = httpx.post(f"{url}/explain", content=score_body, headers={"content-type": "application/json",
                                                                              "x-api-key": key}, timeout=60).json()
            row = [first["values"][f] for f in first["contributions"]]
            results: dict[str, Any] = {"score": {}}
            for c in CONCURRENCY:
                log(f"/score at concurrency {c}")
                results["score"][c] = _measured(proc, url, score_body, {"content-type": "application/json",
                                                                        "x-api-key": key}, c)
        finally:
            stop_server(proc)
        log(f"overload: {OVERLOAD_SLOTS} requests in flight allowed, concurrency {OVERLOAD_CONCURRENCY}")
        proc, url = start_server("serving.service:ChronoriskService",
                                 {**env, "CHRONORISK_MAX_CONCURRENCY": str(OVERLOAD_SLOTS)}, tmp / "overload.log")
        try:
            results["overload"] = _measured(proc, url, score_body, {"content-type": "application/json",
                                                                   "x-api-key": key}, OVERLOAD_CONCURRENCY)
        finally:
            stop_server(proc)
        for name, target, body in (
                ("bare", "chronorisk.bench.services:BareYardstick", json.dumps({"row": row}).encode()),
                ("same_features", "chronorisk.bench.services:SameFeaturesYardstick", score_body)):
            proc, url = start_server(target, env, tmp / f"{name}.log")
            try:
                results[name] = {}
                for c in (*CONCURRENCY, OVERLOAD_CONCURRENCY) if name == "bare" else CONCURRENCY:
                    log(f"yardstick {name} at concurrency {c}")
                    results[name][c] = _measured(proc, url, body, {"content-type": "application/json"}, c)
            finally:
                stop_server(proc)
    checks: dict[str, bool] = {}
    ratios: dict[Any, Any] = {}
    for c in CONCURRENCY:
        s, a, b = results["score"][c], results["bare"][c], results["same_features"][c]
        checks[f"c{c}_p50_at_most_1.5x_same_features"] = s["p50_ms"] <= 1.5 * b["p50_ms"]
        checks[f"c{c}_throughput_at_least_0.7x_same_features"] = s["throughput_rps"] >= 0.7 * b["throughput_rps"]
        checks[f"c{c}_p50_at_most_4x_bare"] = s["p50_ms"] <= 4 * a["p50_ms"]
        checks[f"c{c}_no_errors"] = s["errors"] == 0
        ratios[c] = {"p50_vs_same_features": s["p50_ms"] / b["p50_ms"],
                     "throughput_vs_same_features": s["throughput_rps"] / b["throughput_rps"],
                     "p50_vs_bare": s["p50_ms"] / a["p50_ms"]}
    over = results["overload"]
    bare_same = results["bare"][OVERLOAD_CONCURRENCY]["p50_ms"]
    checks[f"overload_503_p50_at_most_bare_c{OVERLOAD_CONCURRENCY}_p50"] = (
        over["refused_503"] > 0 and over["refused_503_p50_ms"] <= bare_same)
    ratios[f"overload_503_p50_vs_bare_c{OVERLOAD_CONCURRENCY}_p50"] = over.get("refused_503_p50_ms", np.nan) / bare_same
    ratios["overload_503_p50_vs_bare_c1_p50"] = over.get("refused_503_p50_ms", np.nan) / results["bare"][1]["p50_ms"]
    figures = {"score": results["score"], "overload": over, "checks": checks, "ratios": ratios}
    return write_result("serving", "chronorisk bench --name serving",
                        {"workers": 1, "concurrency": list(CONCURRENCY), "warmup": WARMUP, "requests": REQUESTS,
                         "applicant": "365 wearable days, 10 consultations, 8 lab results", "members_trained": 5000,
                         "overload": {"max_concurrency": OVERLOAD_SLOTS, "concurrency": OVERLOAD_CONCURRENCY}},
                        {"figures": figures}, {"bare": results["bare"], "same_features": results["same_features"]},
                        {"p50_vs_same_features_max": 1.5, "throughput_vs_same_features_min": 0.7,
                         "p50_vs_bare_max": 4.0, f"overload_503_p50_vs_bare_c{OVERLOAD_CONCURRENCY}_p50_max": 1.0},
                        all(checks.values()))
