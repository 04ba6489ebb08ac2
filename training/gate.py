"""The promotion gate: the challenger becomes champion only if it is better on the same test data.

It scores the champion and the challenger (both loaded from their hash-checked bundles) on the
challenger's test set, and refuses a worse, miscalibrated or leaking model, or one whose subgroups
(sex, age band) drift apart beyond the product's bounds, with its reasons.
The registry keeps no history of which version was champion when, so every verdict (and every
rollback) is appended to our own promotion log as well.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow import MlflowClient

from chronorisk.model.bundle import probabilities
from chronorisk.model.card import log_model_card
from chronorisk.model.product import GateConfig
from chronorisk.model.registry import CHALLENGER, CHAMPION, alias_version, fetch, model_name, resolve
from training.calibration_intervals import CalibrationIntervals, calibration_intervals, interval_verdict
from training.evaluate import metrics
from training.kfold import fold_noise
from training.subgroups import check_subgroups, subgroup_table

TEST_SET_ARTIFACT = "evaluation/test_set.parquet"
TEST_PREDICTIONS_ARTIFACT = "evaluation/test_predictions.parquet"  # k-fold runs: the tested fit's, before refit
CROSS_VALIDATION_ARTIFACT = "evaluation/cross_validation.json"
MIN_COMPARED_ROWS = 30


@dataclass
class Verdict:
    product: str
    promote: bool
    challenger: str | None
    champion_before: str | None
    reasons: list[str] = field(default_factory=list)
    compared: dict[str, Any] = field(default_factory=dict)
    action: str = "gate"
    time: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    by: str | None = None  # who set the champion by hand (a rollback); the gate decides on its own
    reason: str | None = None  # why they did

    def explain(self) -> str:
        head = "PROMOTED" if self.promote else "REFUSED"
        return f"{head} {self.product} v{self.challenger} (champion before: {self.champion_before}): " + "; ".join(
            self.reasons)


@dataclass(frozen=True)
class FoldComparison:
    """A k-fold run's choice, as the gate reads it: the chosen candidate's cross-validated AUC and
    the best other candidate's on the same folds, with the fold-to-fold noise of their difference."""

    chosen: str
    auc: float
    other: str
    other_auc: float
    noise: float


def judge(challenger: dict[str, float], champion: dict[str, float] | None, glm_auc: float, config: GateConfig,
          leakage_alarm: bool, subgroup_flags: list[str] | None = None, folds: FoldComparison | None = None,
          calibration: CalibrationIntervals | None = None) -> tuple[bool, list[str]]:
    """The rules, as a pure function of the figures compared. A first champion must beat the GLM on
    the test rows, or (k-fold runs, `folds`) be no worse than the other candidate on the same folds
    beyond their noise. Calibration: point bounds on slope and ECE, or (small data, `calibration`)
    refused only when an interval lies wholly outside its bound (training/calibration_intervals.py)."""
    reasons: list[str] = []
    ok = True
    for flag in subgroup_flags or []:
        ok = False
        reasons.append(f"subgroup gap: {flag}")
    if leakage_alarm:
        ok = False
        reasons.append("leakage alarm: the model's AUC against true onset exceeds the true-risk ceiling")
    lo, hi = config.calibration_slope
    slope = challenger["calibration_slope"]
    if calibration is not None:
        calibrated, why = interval_verdict(calibration, config.calibration_slope, config.observed_expected)
        ok = ok and calibrated
        reasons.extend(why)
    else:
        if not lo <= slope <= hi:
            ok = False
            reasons.append(f"calibration slope {slope:.3f} outside [{lo}, {hi}]")
        if not challenger["ece"] <= config.max_ece:
            ok = False
            reasons.append(f"ECE {challenger['ece']:.4f} above {config.max_ece}")
    auc = challenger["roc_auc"]
    if champion is None and folds is not None:
        gap = folds.other_auc - folds.auc
        if gap <= folds.noise:
            reasons.append(f"no champion yet: cross-validated AUC {folds.auc:.4f} ({folds.chosen}) against "
                           f"{folds.other_auc:.4f} ({folds.other}) on the same folds, within the fold noise "
                           f"{folds.noise:.4f}")
        else:
            ok = False
            reasons.append(f"no champion yet and cross-validated AUC {folds.auc:.4f} ({folds.chosen}) trails "
                           f"{folds.other}'s {folds.other_auc:.4f} on the same folds by more than the fold noise "
                           f"{folds.noise:.4f}")
    elif champion is None:
        if auc > glm_auc:
            reasons.append(f"no champion yet: AUC {auc:.4f} beats the GLM's {glm_auc:.4f}")
        else:
            ok = False
            reasons.append(f"no champion yet and AUC {auc:.4f} does not beat the GLM's {glm_auc:.4f}")
    elif auc >= champion["roc_auc"] + config.auc_margin:
        reasons.append(f"AUC {auc:.4f} beats the champion's {champion['roc_auc']:.4f} by at least "
                       f"{config.auc_margin}")
    else:
        ok = False
        reasons.append(f"AUC {auc:.4f} does not beat the champion's {champion['roc_auc']:.4f} by {config.auc_margin}")
    if ok and calibration is None:
        reasons.append(f"calibration within bounds (slope {slope:.3f}, ECE {challenger['ece']:.4f})")
    return ok, reasons


def _rows_the_champion_did_not_see(client: MlflowClient, champion_run: str | None, challenger_run: str | None,
                                   test: pd.DataFrame, p_challenger: np.ndarray) -> pd.DataFrame | None:
    """Where the champion was refitted on every row of the challenger's own snapshot, its scores on
    the challenger's test rows are in-sample. Both runs kept their tested fits' predictions on their
    held-out rows: the rows both held out (label, ours, theirs), or None when the question does not
    arise (another snapshot, no refit) or too few such rows remain to compare on (then say so)."""
    if not champion_run or not challenger_run:
        return None
    champion = client.get_run(champion_run)
    if champion.data.tags.get("refit_on_all_rows") != "true":
        return None

    def snapshot_of(run_id: str) -> str | None:
        path = client.download_artifacts(run_id, "data_fingerprint.json")
        return json.loads(Path(path).read_text()).get("snapshot_sha256")

    if snapshot_of(champion_run) != snapshot_of(challenger_run):
        return None
    theirs = pd.read_parquet(client.download_artifacts(champion_run, TEST_PREDICTIONS_ARTIFACT))
    ours = pd.DataFrame({"member_ref": test["member_ref"].to_numpy(), "label": test["label"].to_numpy(dtype=int),
                         "ours": p_challenger})
    both = ours.merge(theirs[["member_ref", "probability"]].rename(columns={"probability": "theirs"}),
                      on="member_ref", how="inner")
    if len(both) < MIN_COMPARED_ROWS or not 0 < both["label"].sum() < len(both):
        raise LookupError(f"the champion was refitted on every row of this snapshot and only {len(both)} rows were "
                          "held out by both runs: no fair AUC comparison (train the challenger with the champion's "
                          "seed, or promote by hand with --to)")
    return both


def fold_comparison(client: MlflowClient, run_id: str) -> FoldComparison | None:
    """The chosen candidate against the best of the others, from the run's cross-validation record."""
    cv = json.loads(Path(client.download_artifacts(run_id, CROSS_VALIDATION_ARTIFACT)).read_text())
    folds = int(cv["folds"])
    aucs = {m: np.asarray(v, dtype=float) for m, v in cv["fold_auc"].items()}
    chosen = cv["chosen"]
    others = [m for m in aucs if m != chosen]
    if not others:  # one candidate: nothing on the folds to compare with; the GLM baseline on the test rows judges
        return None
    other = max(others, key=lambda m: float(np.nanmean(aucs[m])))
    return FoldComparison(chosen, float(np.nanmean(aucs[chosen])), other, float(np.nanmean(aucs[other])),
                          fold_noise(aucs[other], aucs[chosen], folds))


def append_log(path: Path, verdict: Verdict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(asdict(verdict), sort_keys=True) + "\n")


def promote(client: MlflowClient, product: str, config: GateConfig, log_path: Path,
            to_version: str | None = None, *, reason: str | None = None, by: str | None = None) -> Verdict:
    """Run the gate for the product's challenger, or set the champion to `to_version` by hand (a rollback,
    or forward past the gate), which needs a reason and the name of who decided: both go to the
    promotion log and to the version's tags, and its model card says how it became champion."""
    name = model_name(product)
    before = alias_version(client, product, CHAMPION)
    before_v = before.version if before else None
    if to_version is not None:
        if not (reason and reason.strip()) or not (by and by.strip()):
            raise ValueError("setting the champion by hand needs a reason and who decided (promote --to VERSION "
                             "--reason TEXT --by NAME)")
        who, why = by.strip(), reason.strip()
        target = resolve(client, product, to_version)
        client.set_registered_model_alias(name, CHAMPION, target.version)
        verdict = Verdict(product, True, str(target.version), before_v, action="rollback",
                          reasons=[f"champion set to v{target.version} by hand (was v{before_v})"], by=who, reason=why)
        append_log(log_path, verdict)  # first: the change is on record even if the tags or card below fail
        for tag, value in (("champion_by", who), ("champion_reason", why[:4900]),
                           ("champion_since", verdict.time), ("champion_how", f"set by hand (was v{before_v})")):
            client.set_model_version_tag(name, str(target.version), tag, value)
        log_model_card(client, product, str(target.version))  # the card says how it became champion
        return verdict
    challenger = resolve(client, product, CHALLENGER)
    if not challenger.run_id:
        raise LookupError(f"model {name} v{challenger.version} has no training run to take its test set from")
    run = client.get_run(challenger.run_id)
    test_path = Path(client.download_artifacts(challenger.run_id, TEST_SET_ARTIFACT))
    test = pd.read_parquet(test_path)
    y = test["label"].to_numpy(dtype=int)
    challenger_model = fetch(client, challenger)
    kfold = run.data.tags.get("training_mode") == "kfold"
    if kfold and run.data.tags.get("refit_on_all_rows") == "true":
        # the registered refit has seen these rows: judge the fit that was tested on them, scored once
        held = pd.read_parquet(client.download_artifacts(challenger.run_id, TEST_PREDICTIONS_ARTIFACT))
        if len(held) != len(test) or not ((held["label"].to_numpy(dtype=int) == y).all() and (
                held["member_ref"].to_numpy() == test["member_ref"].to_numpy()).all()):
            raise LookupError(f"model {name} v{challenger.version}: its test predictions do not match its test set")
        p_chal = held["probability"].to_numpy(dtype=float)
    else:
        p_chal = probabilities(challenger_model, test)
    chal = metrics(y, p_chal)
    champ, compared_on = None, None
    chal_vs_champ = chal
    if before is not None and before.version != challenger.version:
        champ_p = probabilities(fetch(client, before), test)
        champ = metrics(y, champ_p)
        unseen = _rows_the_champion_did_not_see(client, before.run_id, challenger.run_id, test, p_chal)
        if unseen is not None:  # the champion was refitted on this very snapshot: judge both where neither looked
            compared_on = unseen
            chal_vs_champ = {**chal, "roc_auc": metrics(unseen["label"].to_numpy(), unseen["ours"].to_numpy())[
                "roc_auc"]}
            champ = metrics(unseen["label"].to_numpy(), unseen["theirs"].to_numpy())
    glm_auc = float(run.data.metrics.get("test_glm_roc_auc", float("nan")))
    folds = fold_comparison(client, challenger.run_id) if kfold else None  # decision 10, as amended by issue 15
    # small data (k-fold): calibration judged by its intervals, which replace the ECE bound
    intervals = calibration_intervals(y, p_chal, config.bootstrap_replicates, seed=0) if kfold else None
    leakage = run.data.tags.get("leakage_alarm", "false") == "true"
    groups = check_subgroups(subgroup_table(test, p_chal, challenger_model.spec),
                             config.subgroups)
    ok, reasons = judge(chal_vs_champ, champ, glm_auc, config, leakage, groups.flags, folds=folds,
                        calibration=intervals)
    if compared_on is not None:
        reasons.append(f"champion v{before_v} was refitted on every row of this snapshot: the AUCs are compared on "
                       f"the {len(compared_on)} rows both runs held out, scored by their tested fits")
    verdict = Verdict(product, ok, str(challenger.version), before_v, reasons=reasons,
                      compared={"test_rows": len(y), "challenger": chal, "champion": champ, "glm_roc_auc": glm_auc,
                                "champion_compared_on_rows": None if compared_on is None else len(compared_on),
                                "folds": asdict(folds) if folds else None,
                                "calibration_intervals": intervals.as_dict() if intervals else None,
                                "subgroups_not_judged": groups.not_judged})
    if ok:
        client.set_registered_model_alias(name, CHAMPION, challenger.version)
    client.set_model_version_tag(name, challenger.version, "gate_verdict", "promoted" if ok else "refused")
    client.set_model_version_tag(name, challenger.version, "gate_reasons", "; ".join(reasons)[:4900])
    if ok:
        for tag, value in (("champion_by", "the gate"), ("champion_reason", "passed the gate"),
                           ("champion_since", verdict.time),
                           ("champion_how", f"promoted by the gate (was v{before_v})")):
            client.set_model_version_tag(name, challenger.version, tag, value)
    append_log(log_path, verdict)  # first: a promotion is on record even if the card below fails
    log_model_card(client, product, str(challenger.version))  # the card states the verdict it now has
    return verdict
