"""The last step of `make demo`: start the real BentoML server, send one real request, stop it.

The request is a synthetic member's records up to an application date, as an insurer would
send them, with an API key created for the demo (only its hash is stored).
"""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from chronorisk.settings import Settings


def demo_request(settings: Settings, data_dir: Path, application_date: date = date(2022, 6, 30)) -> dict[str, Any]:
    """A /score body for the first member with wearable data, from the accepted raw tables."""
    from features.contracts import load_raw
    from serving.examples import applicant_request

    raw, _ = load_raw(data_dir, pepper=settings.id_pepper.get_secret_value().encode())
    tables = {name: getattr(raw, name) for name in ("members", "applications", "consultations", "lab_results",
                                                    "wearable_daily")}
    wear = tables["wearable_daily"]
    t = application_date
    members = tables["members"]
    enrolled = members[members["enrollment_start"] < str(t)]["member_id"]
    recent = wear[(wear["date"] < str(t)) & wear["member_id"].isin(enrolled)]["member_id"]
    member = recent.iloc[0] if len(recent) else enrolled.iloc[0]
    return {"product": "diabetes", "applicant": applicant_request(tables, member, application_date)}


def serve_and_score_once(settings: Settings, data_dir: Path, log: Any = print) -> dict[str, Any]:
    from serving.keys import KeyStore
    from serving.process import start_server, stop_server

    key, _ = KeyStore(settings.keys_file).create("make-demo", ["diabetes"])
    body = demo_request(settings, data_dir)
    Path("data").mkdir(exist_ok=True)
    payload = json.dumps(body).encode()  # the exact bytes sent, so the audit's input hash can be checked later
    Path("data/demo_request.json").write_bytes(payload)
    env = {**os.environ, "CHRONORISK_SERVE_PRODUCTS": "diabetes"}
    proc, url = start_server("serving.service:ChronoriskService", env, Path("data/demo_server.log"))
    try:
        log(f"server ready on {url}; POST /score with the body in data/demo_request.json")
        answer = httpx.post(f"{url}/score", content=payload, timeout=60,
                            headers={"X-API-Key": key, "Content-Type": "application/json"})
        log(f"HTTP {answer.status_code}")
        return dict(answer.json())
    finally:
        stop_server(proc)
