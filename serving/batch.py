"""`chronorisk score`: the offline batch runner of the scoring function the service calls.

`--input` scores applicant requests (JSON lines) with `score_applicant`, so each line's answer
equals the service's for the same body and model version, bit for bit. `--data` scores every
member of a raw folder enrolled on an index date, through the chunked feature runner, and
writes features and scores as parquet for reports and the monitor, with an `eligible` column
(the rows like those the model learned from, which the monitor compares with its reference).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
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
from features.registry import FeatureRegistry, default_registry
from features.runners import CONTRACT_REASONS, FeaturesAtDate, RunTotals, run_chunked, stream_to_parquet
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
    """Eligibility of every member of a folder: its own read of the tables, for an import (whose
    features `imported_features_at` reads apart from the chunked runner); a raw folder's comes with
    its features, in the one pass of `score_folder`."""
    frames = run_chunked(data_dir, EligibleAtDate(served.model.spec, index_date), chunk_members=20_000,
                         extract_date=extract_date_of(data_dir), pepper=settings.id_pepper.get_secret_value().encode(),
                         totals=RunTotals(), progress=False)  # no `until`: an import may hold dates as text
    return pd.concat(list(frames), ignore_index=True)


ELIGIBLE = "_eligible"  # the one-pass chunk's eligibility column, taken off before scoring


class ScoringRowsAtDate:
    """A chunk function: the features of every member enrolled on the date (FeaturesAtDate, with the
    contract reasons) and, from the same validated tables, whether each is eligible (EligibleAtDate).
    Both need only records before the date, which is all the read holds (`until`, no `since`): the
    prevalent rule looks back to the first record, so no history window may cut the read. The model
    (whose product spec decides eligibility) is asked for only after the chunk's features: it may
    still be loading (`score_folder`)."""

    refuses_rejected = True

    def __init__(self, served: Callable[[], ServedModel], index_date: date, registry: FeatureRegistry) -> None:
        self.features = FeaturesAtDate(index_date, registry, refuses_rejected=True)
        self.served, self.index_date = served, index_date

    def __call__(self, tables: Mapping[str, pd.DataFrame]) -> tuple[pd.DataFrame, dict[str, int]]:
        frame, counts = self.features(tables)
        eligible, _ = EligibleAtDate(self.served().model.spec, self.index_date)(tables)
        flags = frame[["member_id"]].merge(eligible, on="member_id", how="left")["eligible"]
        return frame.assign(**{ELIGIBLE: flags.fillna(False).astype(bool).to_numpy()}), counts


def score_folder(settings: Settings, product: str, version: str, data_dir: Path, index_date: date,
                 out: Path, *, chunk_members: int = 20_000) -> dict[str, int]:
    pepper = settings.id_pepper.get_secret_value().encode()
    if (Path(data_dir) / EXTRACT_DIR).is_dir():  # an import: its custom measurements live beside the tables
        served = load_served(settings, product, version)
        frame = imported_features_at(data_dir, index_date, served.registry, pepper, contract_reasons=True)
        return _score_frame(served, frame, eligible_at(settings, served, data_dir, index_date), out, len(frame),
                            pepper)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="load-model") as pool:
        # The model loads (MLflow's import, the registry, the hash checks: ~2-3 s here, a sixth of a 100k
        # book's scoring) while the first chunk's features are built; nothing of it is needed before.
        loading = pool.submit(load_served, settings, product, version)
        return _score_chunks(loading.result, data_dir, index_date, out, chunk_members, product, pepper)


def _score_chunks(served_model: Callable[[], ServedModel], data_dir: Path, index_date: date, out: Path,
                  chunk_members: int, product: str, pepper: bytes) -> dict[str, int]:
    # One read of each table, records before the date only: features, eligibility and refusals of
    # a chunk together, scored as they come (a prediction depends on its own row alone).
    totals = RunTotals()
    chunks = run_chunked(data_dir, ScoringRowsAtDate(served_model, index_date, default_registry()),
                         chunk_members=chunk_members, extract_date=extract_date_of(data_dir), pepper=pepper,
                         totals=totals, until=index_date)
    listed: list[pd.DataFrame] = []

    def scored() -> Iterator[pd.DataFrame]:
        for frame in chunks:
            flags = frame.pop(ELIGIBLE)
            eligible = pd.DataFrame({"member_id": frame["member_id"].to_numpy(), "eligible": flags.to_numpy()})
            rows, refused = _without_refused(frame, pepper)
            if len(refused):
                listed.append(refused)
            yield _scored(served_model(), rows, eligible)

    refusals = refused_path(out)
    refusals.unlink(missing_ok=True)
    frames = scored()
    first = next(frames, None)  # the model has loaded by the end of the first chunk
    stream_to_parquet(itertools.chain([first], frames) if first is not None else iter(()), out,
                      {"index_date": index_date.isoformat(), "product": product,
                       "model_version": served_model().version})
    refused = sum(len(r) for r in listed)
    if refused:
        pd.concat(listed, ignore_index=True).to_parquet(refusals, index=False)
    return {"members": totals.counts.get("members", 0), "scored": totals.counts.get("rows", 0) - refused,
            "refused": refused}


def refused_path(out: Path) -> Path:
    """Where `score --data` lists the members it refused: `<out stem>.refused.parquet`."""
    return out.with_suffix(".refused.parquet")


def _without_refused(frame: pd.DataFrame, pepper: bytes) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the rows to score, the listing of the refused: member_ref, index_date, reasons).

    A member whose records break a contract rule is refused, as the service refuses such an
    applicant (422), with the same messages (chronorisk.data.contracts.rule_message), never scored
    without the rows; they are listed by HMAC reference beside the output."""
    reasons = frame.pop(CONTRACT_REASONS) if CONTRACT_REASONS in frame else pd.Series("", index=frame.index)
    refused = (reasons != "").to_numpy(dtype=bool)
    listed = pd.DataFrame({"member_ref": member_refs(frame.loc[refused, "member_id"].astype("str"), pepper),
                           "index_date": frame.loc[refused, "index_date"], "reasons": reasons[refused]})
    return frame.loc[~refused].reset_index(drop=True), listed.reset_index(drop=True)


def _scored(served: ServedModel, frame: pd.DataFrame, eligible: pd.DataFrame) -> pd.DataFrame:
    model = served.model
    frame["probability"] = probabilities(model, frame)
    frame["risk_class"] = model.spec.class_names(frame["probability"].to_numpy())
    frame["model_version"] = served.version
    frame = frame.merge(eligible, on="member_id", how="left")
    frame["eligible"] = frame["eligible"].fillna(False).astype(bool)
    return frame


def _score_frame(served: ServedModel, frame: pd.DataFrame, eligible: pd.DataFrame, out: Path, members: int,
                 pepper: bytes) -> dict[str, int]:
    frame, listed = _without_refused(frame, pepper)
    refusals = refused_path(out)
    refusals.unlink(missing_ok=True)
    if len(listed):
        listed.to_parquet(refusals, index=False)
    frame = _scored(served, frame, eligible)
    frame.to_parquet(out, index=False)
    return {"members": members, "scored": len(frame), "refused": len(listed)}
