"""Where the monitor finds today's scored population: a batch file from `chronorisk score --data`,
or the audit log's answered /score and /explain requests (each stores its model input vector,
decision 14). Both become one frame: feature columns, `probability`, `risk_class`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from tqdm import tqdm

from serving.audit import AuditLog

SCORED_ENDPOINTS = ("/score", "/explain")


def read_batch(path: Path) -> tuple[pd.DataFrame, str | None]:
    """A scored batch parquet and the one model version that scored it (None when it does not say)."""
    if not path.exists():
        raise FileNotFoundError(f"no batch file {path}; write one with `chronorisk score --data DIR --index-date D`")
    frame = pd.read_parquet(path)
    versions = sorted(frame["model_version"].astype(str).unique()) if "model_version" in frame else []
    if len(versions) > 1:
        raise ValueError(f"{path}: scored by several model versions {versions}; monitor one version at a time")
    return frame, (versions[0] if versions else None)


def read_audit(audit_url: str, product: str, model_version: str, since: str | None = None,
               progress: bool = True) -> tuple[pd.DataFrame, dict[str, int]]:
    """Answered requests for one product and model version since a date, as a scored frame.

    Returns the frame and counts of what was read and why records were left out (refusals,
    other versions, batch answers, which store no feature vector).
    """
    counts = {"records": 0, "used": 0, "refused_or_failed": 0, "other_version": 0, "no_features": 0}
    rows: list[dict[str, float | str | None]] = []
    with AuditLog(audit_url) as log:
        for record in tqdm(log.records(since=since, product=product), desc="audit records", unit="rec",
                           disable=not progress, mininterval=1.0):
            counts["records"] += 1
            if record.status_code != 200 or record.endpoint not in SCORED_ENDPOINTS:
                counts["refused_or_failed"] += 1
            elif record.model_version != model_version:
                counts["other_version"] += 1
            elif not record.features or record.score is None:
                counts["no_features"] += 1
            else:
                counts["used"] += 1
                rows.append({**record.features, "probability": record.score, "risk_class": record.risk_class})
    frame = pd.DataFrame(rows)
    for column in frame.columns:
        if column != "risk_class":
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    return frame, counts
