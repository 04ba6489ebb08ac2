"""GET /model_card/{product} on the real server: the champion's card, stating its run's subgroup metrics."""

from __future__ import annotations

import httpx
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from chronorisk.model.registry import CHAMPION, connect, fetch, resolve
from training.gate import TEST_SET_ARTIFACT


def _get(server, path: str, key: str | None) -> httpx.Response:
    return httpx.get(server.url + path, headers={"x-api-key": key} if key else {}, timeout=60)


def test_the_champion_card_states_the_subgroup_metrics_of_its_run(scoring_server, model_store, api_keys, tmp_path):
    answer = _get(scoring_server, "/model_card/diabetes", api_keys.diabetes)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/markdown")
    assert answer.headers["x-model-version"] == model_store.version
    card = answer.text
    assert f"diabetes-risk v{model_store.version}" in card.splitlines()[0]
    # Recompute the subgroup AUCs from the champion's own test set, independently of the card's code.
    client = connect(model_store.tracking_uri)
    mv = resolve(client, "diabetes", CHAMPION)
    test = pd.read_parquet(client.download_artifacts(str(mv.run_id), TEST_SET_ARTIFACT, str(tmp_path)))
    model = fetch(client, mv)
    p = model.calibration.probability(np.asarray(model.scorer.predict(test[model.features].to_numpy(dtype=float),
                                                                       raw_score=True)))
    rows = {line.split(" | ")[1]: line for line in card.splitlines() if line.startswith("| sex | ")}
    assert set(rows) == {"F", "M"}
    for sex in ("F", "M"):
        mask = (test["sex"] == sex).to_numpy()
        auc = roc_auc_score(test["label"].to_numpy()[mask], p[mask])
        events = int(test["label"].to_numpy()[mask].sum())
        assert rows[sex].startswith(f"| sex | {sex} | {int(mask.sum())} | {events} | {auc:.4f} |"), rows[sex]
    assert "Bounds: AUC gap between subgroups" in card and "Flags: " in card


def test_the_card_comes_as_html_and_only_with_a_key_for_the_product(scoring_server, api_keys):
    page = _get(scoring_server, "/model_card/diabetes?format=html", api_keys.diabetes)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<h2>Metrics by subgroup (test set)</h2>" in page.text
    assert _get(scoring_server, "/model_card/diabetes", None).status_code == 401
    assert _get(scoring_server, "/model_card/diabetes", api_keys.revoked).status_code == 401
    assert _get(scoring_server, "/model_card/diabetes", api_keys.hypertension).status_code == 403
    unknown = _get(scoring_server, "/model_card/asthma", api_keys.diabetes)
    assert unknown.status_code == 404 and "known products: diabetes" in unknown.text
    assert _get(scoring_server, "/model_card/diabetes?format=pdf", api_keys.diabetes).status_code == 422
