"""`chronorisk monitor`: one product's scored population against its model's reference profile.

The reference comes from the model version's hash-checked bundle (never from a file beside
the report), the population from a batch file or the audit log; the verdict's exit code is
what a scheduler alerts on.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from chronorisk.model.product import ProductSpec
from chronorisk.model.profile import ReferenceProfile
from chronorisk.settings import Settings
from monitoring.drift import DriftResult, MonitorConfig, compare
from monitoring.sources import read_audit, read_batch


def load_reference(settings: Settings, product: str, version: str) -> tuple[str, ReferenceProfile]:
    """The version number and reference profile of a version or alias, through `load_bundle`."""
    number, reference, _ = load_reference_and_spec(settings, product, version)
    return number, reference


def load_reference_and_spec(settings: Settings, product: str, version: str
                            ) -> tuple[str, ReferenceProfile, ProductSpec]:
    """load_reference, with the product spec the version was trained under."""
    from chronorisk.model.registry import connect, fetch, resolve

    client = connect(settings.mlflow_tracking_uri)
    mv = resolve(client, product, version)
    model = fetch(client, mv)
    return str(mv.version), model.reference, model.spec


def ineligible_why(spec: ProductSpec) -> str:
    """Who the product's rows leave out, in words: it follows the outcome (chronorisk/model/product.py)."""
    why = []
    if spec.excludes_prevalent:
        why.append(f"{spec.disease} already on record")
    if spec.min_history_days:
        why.append(f"under {spec.min_history_days:,} days enrolled")
    why.append("not enrolled on the date")
    return " or ".join(why)


def run_monitor(settings: Settings, product: str, config: MonitorConfig, *, batch: Path | None = None,
                since: date | None = None, version: str | None = None, progress: bool = True) -> DriftResult:
    """Compare a batch file (or the audit log since a date) with the reference of the model that scored it."""
    if batch is not None:
        frame, batch_version = read_batch(batch)
        excluded = 0
        if "eligible" in frame.columns:  # prevalent or short-history members are not the reference's population
            excluded = int((~frame["eligible"].astype(bool)).sum())
            frame = frame[frame["eligible"].astype(bool)].reset_index(drop=True)
        if version is not None and batch_version is not None and version != batch_version:
            raise ValueError(f"{batch} was scored by model v{batch_version}, not v{version}")
        number, reference, spec = load_reference_and_spec(settings, product, version or batch_version or "champion")
        result = compare(reference, frame, config, product=product, model_version=number,
                         source=f"batch file {batch}")
        if excluded:
            result.notes.append(f"{excluded:,} rows left out: not eligible on the index date ({ineligible_why(spec)}),"
                                " as in training")
        return result
    number, reference = load_reference(settings, product, version or "champion")
    frame, counts = read_audit(settings.audit_url, product, number, since.isoformat() if since else None, progress)
    source = (f"audit log since {since.isoformat() if since else 'the beginning'}: {counts['records']:,} records, "
              f"{counts['used']:,} answered by v{number} with a feature vector")
    if frame.empty:
        raise ValueError(f"{source}; nothing to monitor ({counts})")
    result = compare(reference, frame, config, product=product, model_version=number, source=source)
    left_out = {k: v for k, v in counts.items() if k not in ("records", "used") and v}
    if left_out:
        result.notes.append("audit records left out: " + ", ".join(f"{k} {v:,}" for k, v in left_out.items()))
    return result
