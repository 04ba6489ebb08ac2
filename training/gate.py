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

import pandas as pd
from mlflow import MlflowClient

from training.artifacts import probabilities
from training.evaluate import metrics
from training.model_card import log_model_card
from training.products import GateConfig
from training.registry import CHALLENGER, CHAMPION, alias_version, fetch, model_name, resolve
from training.subgroups import check_subgroups, subgroup_table

TEST_SET_ARTIFACT = "evaluation/test_set.parquet"


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

    def explain(self) -> str:
        head = "PROMOTED" if self.promote else "REFUSED"
        return f"{head} {self.product} v{self.challenger} (champion before: {self.champion_before}): " + "; ".join(
            self.reasons)


def judge(challenger: dict[str, float], champion: dict[str, float] | None, glm_auc: float, config: GateConfig,
          leakage_alarm: bool, subgroup_flags: list[str] | None = None, cv_auc: float | None = None
          ) -> tuple[bool, list[str]]:
    """The rules, as a pure function of the figures compared. `cv_auc` (k-fold runs): the challenger's
    cross-validated AUC, then compared with the GLM's on the same repeated folds (`glm_auc`)."""
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
    if not lo <= slope <= hi:
        ok = False
        reasons.append(f"calibration slope {slope:.3f} outside [{lo}, {hi}]")
    if not challenger["ece"] <= config.max_ece:
        ok = False
        reasons.append(f"ECE {challenger['ece']:.4f} above {config.max_ece}")
    auc = challenger["roc_auc"]
    if champion is None:
        mine, where = (auc, "") if cv_auc is None else (cv_auc, "cross-validated ")
        same = "" if cv_auc is None else " on the same folds"
        if mine > glm_auc:
            reasons.append(f"no champion yet: {where}AUC {mine:.4f} beats the GLM's {glm_auc:.4f}{same}")
        else:
            ok = False
            reasons.append(f"no champion yet and {where}AUC {mine:.4f} does not beat the GLM's {glm_auc:.4f}{same}")
    elif auc >= champion["roc_auc"] + config.auc_margin:
        reasons.append(f"AUC {auc:.4f} beats the champion's {champion['roc_auc']:.4f} by at least "
                       f"{config.auc_margin}")
    else:
        ok = False
        reasons.append(f"AUC {auc:.4f} does not beat the champion's {champion['roc_auc']:.4f} by {config.auc_margin}")
    if ok:
        reasons.append(f"calibration within bounds (slope {slope:.3f}, ECE {challenger['ece']:.4f})")
    return ok, reasons


def append_log(path: Path, verdict: Verdict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(asdict(verdict), sort_keys=True) + "\n")


def promote(client: MlflowClient, product: str, config: GateConfig, log_path: Path,
            to_version: str | None = None) -> Verdict:
    """Run the gate for the product's challenger, or roll the champion back to `to_version`."""
    name = model_name(product)
    before = alias_version(client, product, CHAMPION)
    before_v = before.version if before else None
    if to_version is not None:
        target = resolve(client, product, to_version)
        client.set_registered_model_alias(name, CHAMPION, target.version)
        verdict = Verdict(product, True, str(target.version), before_v, action="rollback",
                          reasons=[f"champion set to v{target.version} by request (was v{before_v})"])
        append_log(log_path, verdict)
        return verdict
    challenger = resolve(client, product, CHALLENGER)
    if not challenger.run_id:
        raise LookupError(f"model {name} v{challenger.version} has no training run to take its test set from")
    run = client.get_run(challenger.run_id)
    test_path = Path(client.download_artifacts(challenger.run_id, TEST_SET_ARTIFACT))
    test = pd.read_parquet(test_path)
    y = test["label"].to_numpy(dtype=int)
    challenger_model = fetch(client, challenger)
    p_chal = probabilities(challenger_model, test)
    chal = metrics(y, p_chal)
    champ = None
    if before is not None and before.version != challenger.version:
        champ = metrics(y, probabilities(fetch(client, before), test))
    glm_auc = float(run.data.metrics.get("test_glm_roc_auc", float("nan")))
    cv_auc = None
    if run.data.tags.get("training_mode") == "kfold":  # decision 10: on the same repeated folds
        cv_auc = float(run.data.metrics.get("cv_lightgbm_roc_auc_mean", float("nan")))
        glm_auc = float(run.data.metrics.get("cv_glm_roc_auc_mean", float("nan")))
    leakage = run.data.tags.get("leakage_alarm", "false") == "true"
    groups = check_subgroups(subgroup_table(test, p_chal, challenger_model.spec),
                             config.subgroups)
    ok, reasons = judge(chal, champ, glm_auc, config, leakage, groups.flags, cv_auc=cv_auc)
    if run.data.tags.get("model_choice") == "glm":  # the bundle holds LightGBM; the folds preferred the GLM
        ok = False
        reasons.insert(0, "the folds chose the GLM over LightGBM; a LightGBM bundle is not promoted over it")
    verdict = Verdict(product, ok, str(challenger.version), before_v, reasons=reasons,
                      compared={"test_rows": len(y), "challenger": chal, "champion": champ, "glm_roc_auc": glm_auc,
                                "subgroups_not_judged": groups.not_judged})
    if ok:
        client.set_registered_model_alias(name, CHAMPION, challenger.version)
    client.set_model_version_tag(name, challenger.version, "gate_verdict", "promoted" if ok else "refused")
    client.set_model_version_tag(name, challenger.version, "gate_reasons", "; ".join(reasons)[:4900])
    append_log(log_path, verdict)  # first: a promotion is on record even if the card below fails
    log_model_card(client, product, str(challenger.version))  # the card states the verdict it now has
    return verdict
