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
    from chronorisk.data.contracts import load_raw
    from serving.examples import applicant_request

    raw, _ = load_raw(data_dir, pepper=settings.id_pepper.get_secret_value().encode())
    tables = raw.frames()
    wear = tables["wearable_daily"]
    t = application_date
    members = tables["members"]
    enrolled = members[members["enrollment_start"] < str(t)]["member_id"]
    recent = wear[(wear["date"] < str(t)) & wear["member_id"].isin(enrolled)]["member_id"]
    member = recent.iloc[0] if len(recent) else enrolled.iloc[0]
    return {"product": "diabetes", "applicant": applicant_request(tables, member, application_date)}


def serve_and_score_once(settings: Settings, data_dir: Path, log: Any = print) -> dict[str, Any]:
    """The demo's request: a synthetic member's records, scored by the real server. The body sent is
    kept in data/demo_request.json, byte for byte, so the audit's input hash can be checked later."""
    return serve_and_score(settings, "diabetes", demo_request(settings, data_dir), log=log, name="demo")


def imported_request(settings: Settings, data_dir: Path, product: str) -> dict[str, Any]:
    """A /score body for the first applicant of an imported flat extract: the examination and labs
    of the application date, and the custom measurements the model was trained with."""
    from serving.examples import applicant_request
    from training.extract_snapshot import imported_tables

    tables, _, _ = imported_tables(data_dir, settings.id_pepper.get_secret_value().encode())
    custom = tables.pop("custom_measurements")
    member = str(custom["member_id"].iloc[0]) if len(custom) else str(tables["members"]["member_id"].iloc[0])
    row = tables["members"].set_index("member_id").loc[member]
    body = applicant_request(tables, member, row["enrollment_start"].date())
    mine = custom[custom["member_id"] == member]
    body["custom_measurements"] = {str(f): float(v) for f, v in zip(mine["feature"], mine["value"], strict=True)}
    return {"product": product, "applicant": body}


def serve_and_score(settings: Settings, product: str, body: dict[str, Any], log: Any = print,
                    name: str = "byod") -> dict[str, Any]:
    """Start the real server for one product, send `body` to /score with a fresh key, stop the server.
    The key is revoked afterwards: a demo must not leave a live credential behind."""
    from serving.keys import KeyStore
    from serving.process import start_server, stop_server

    keys = KeyStore(settings.keys_file)
    key, issued = keys.create(f"make-{name}", [product])
    Path("data").mkdir(exist_ok=True)
    payload = json.dumps(body).encode()
    Path(f"data/{name}_request.json").write_bytes(payload)
    env = {**os.environ, "CHRONORISK_SERVE_PRODUCTS": product}
    proc, url = start_server("serving.service:ChronoriskService", env, Path(f"data/{name}_server.log"))
    try:
        log(f"server ready on {url}; POST /score with the body in data/{name}_request.json")
        answer = httpx.post(f"{url}/score", content=payload, timeout=60,
                            headers={"X-API-Key": key, "Content-Type": "application/json"})
        log(f"HTTP {answer.status_code}")
        return dict(answer.json())
    finally:
        stop_server(proc)
        keys.revoke(issued.key_id)
