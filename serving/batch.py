"""`chronorisk score`: the offline batch runner of the scoring function the service calls.

`--input` scores applicant requests (JSON lines) with `score_applicant`, so each line's answer
equals the service's for the same body and model version, bit for bit. `--data` scores every
member of a raw folder enrolled on an index date, through the chunked feature runner, and
writes features and scores as parquet for reports and the monitor, with an `eligible` column
(the rows like those the model learned from, which the monitor compares with its reference).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from chronorisk.data.contracts import extract_date_of
from chronorisk.data.enrolment import enrolled_on
from chronorisk.data.extract import EXTRACT_DIR
from chronorisk.data.pseudonym import member_refs
from chronorisk.model.bundle import probabilities
from chronorisk.model.product import ProductSpec
from chronorisk.settings import Settings
from features.runners import CONTRACT_REASONS, RunTotals, build_features_at, run_chunked
from serving.schemas import Applicant
from serving.scoring import ApplicantRejected, ServedModel, score_applicant, served_from
from training.extract_snapshot import imported_features_at
from training.labels import recorded_events


def load_served(settings: Settings, product: str, version: str) -> ServedModel:
    from chronorisk.model.registry import connect, fetch, model_name, resolve

    client = connect(settings.mlflow_tracking_uri)
    mv = resolve(client, product, version)
    return served_from(product, model_name(product), str(mv.version), fetch(client, mv))


def read_requests(path: Path) -> list[dict[str, Any]]:
    text = path.read_text().strip()
    rows = json.loads(text) if text.startswith("[") else [json.loads(line) for line in text.splitlines() if line]
    return [r.get("applicant", r) for r in rows]


def score_requests(settings: Settings, product: str, version: str, source: Path, out: Path,
                   today: date | None = None) -> dict[str, int]:
    from pydantic import ValidationError

    served = load_served(settings, product, version)
    pepper = settings.id_pepper.get_secret_value().encode()
    day = today or datetime.now(UTC).date()
    counts = {"read": 0, "scored": 0, "rejected": 0}
    with open(out, "w") as f:
        for i, raw in enumerate(read_requests(source)):
            counts["read"] += 1
            try:
                scored = score_applicant(served, Applicant.model_validate(raw), f"batch-{i}", day, pepper)
                line: dict[str, Any] = {"index": i, "status": 200, "result": scored.result.model_dump(mode="json")}
                counts["scored"] += 1
            except ValidationError as err:
                line = {"index": i, "status": 422, "errors": err.errors(include_input=False, include_url=False)}
                counts["rejected"] += 1
            except ApplicantRejected as err:
                line = {"index": i, "status": 422, "errors": [e.model_dump() for e in err.errors]}
                counts["rejected"] += 1
            f.write(json.dumps(line, default=str) + "\n")
    return counts


class EligibleAtDate:
    """A chunk function: whether each enrolled member is someone the model learned about on this date:
    enrolled for the history the product's rows need and, for an incident outcome, without a recorded
    event before it (the training rows' rule, without the follow-up that only training knows; an
    extract's applicants need no history, and a current outcome excludes nobody for the disease:
    chronorisk/model/product.py). The monitor compares these rows with the model's reference."""

    def __init__(self, spec: ProductSpec, index_date: date) -> None:
        self.spec, self.index_date = spec, index_date

    def __call__(self, tables: Mapping[str, pd.DataFrame]) -> tuple[pd.DataFrame, dict[str, int]]:
        members = tables["members"]
        t = pd.Timestamp(self.index_date)
        ok = enrolled_on(members, t, joined_by=t - pd.Timedelta(days=self.spec.min_history_days))
        first = recorded_events(tables, self.spec).reindex(members["member_id"])
        prevalent = (pd.to_datetime(first) < t).to_numpy(dtype=bool, na_value=False) & self.spec.excludes_prevalent
        return pd.DataFrame({"member_id": members["member_id"].to_numpy(), "eligible": ok & ~prevalent}), {}


def eligible_at(settings: Settings, served: ServedModel, data_dir: Path, index_date: date) -> pd.DataFrame:
    frames = run_chunked(data_dir, EligibleAtDate(served.model.spec, index_date), chunk_members=20_000,
                         extract_date=extract_date_of(data_dir), pepper=settings.id_pepper.get_secret_value().encode(),
                         totals=RunTotals(), progress=False)  # no `until`: an import may hold dates as text
    return pd.concat(list(frames), ignore_index=True)


def score_folder(settings: Settings, product: str, version: str, data_dir: Path, index_date: date,
                 out: Path) -> dict[str, int]:
    served = load_served(settings, product, version)
    pepper = settings.id_pepper.get_secret_value().encode()
    if (Path(data_dir) / EXTRACT_DIR).is_dir():  # an import: its custom measurements live beside the tables
        frame = imported_features_at(data_dir, index_date, served.registry, pepper, contract_reasons=True)
        return _score_frame(served, frame, eligible_at(settings, served, data_dir, index_date), out, len(frame),
                            pepper)
    features_path = out.with_suffix(".features.parquet")
    totals = build_features_at(data_dir, index_date, features_path, extract_date=extract_date_of(data_dir),
                               pepper=pepper, contract_reasons=True)
    frame = pd.read_parquet(features_path)
    features_path.unlink()
    return _score_frame(served, frame, eligible_at(settings, served, data_dir, index_date), out,
                        totals.counts.get("members", 0), pepper)


def refused_path(out: Path) -> Path:
    """Where `score --data` lists the members it refused: `<out stem>.refused.parquet`."""
    return out.with_suffix(".refused.parquet")


def _score_frame(served: ServedModel, frame: pd.DataFrame, eligible: pd.DataFrame, out: Path, members: int,
                 pepper: bytes) -> dict[str, int]:
    # A member whose records break a contract rule is refused, as the service refuses such an
    # applicant (422), with the same messages (chronorisk.data.contracts.rule_message), never scored
    # without the rows; they are listed by HMAC reference beside the output.
    reasons = frame.pop(CONTRACT_REASONS) if CONTRACT_REASONS in frame else pd.Series("", index=frame.index)
    refused = (reasons != "").to_numpy(dtype=bool)
    refusals = refused_path(out)
    refusals.unlink(missing_ok=True)
    if refused.any():
        listed = pd.DataFrame({"member_ref": member_refs(frame.loc[refused, "member_id"].astype("str"), pepper),
                               "index_date": frame.loc[refused, "index_date"], "reasons": reasons[refused]})
        listed.reset_index(drop=True).to_parquet(refusals, index=False)
    frame = frame.loc[~refused].reset_index(drop=True)
    model = served.model
    frame["probability"] = probabilities(model, frame)
    frame["risk_class"] = model.spec.class_names(frame["probability"].to_numpy())
    frame["model_version"] = served.version
    frame = frame.merge(eligible, on="member_id", how="left")
    frame["eligible"] = frame["eligible"].fillna(False).astype(bool)
    frame.to_parquet(out, index=False)
    return {"members": members, "scored": len(frame), "refused": int(refused.sum())}
