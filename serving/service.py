"""The BentoML scoring service: one small class over the scoring function.

At start-up it resolves each product's `champion` alias once, fetches that exact version and
loads it from its hash-checked bundle (in a background thread, so the server answers /readyz
503 with the reason until every champion is in). A champion that cannot be loaded keeps the
service not ready; it is never replaced by another model. Business logic lives in
`serving.scoring`; refusals before the model are the gatekeeper's (`serving.gatekeeper`).
"""

from __future__ import annotations

import gc
import logging
import os
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import bentoml
from fastapi import FastAPI, Header, Query
from pydantic import Field
from starlette.responses import JSONResponse, Response

from chronorisk.data.pseudonym import member_ref
from chronorisk.model.product import load_product
from chronorisk.settings import NO_VERSION, load_settings
from serving.audit import AuditRecord, AuditUnavailable, open_audit_log, utc_now
from serving.audit_followup import FollowUps, undelivered_record
from serving.gatekeeper import Gatekeeper
from serving.keys import AuthResult, KeyStore, KeyStoreError
from serving.openapi import OpenAPIDocument
from serving.readiness import ReadyMarks
from serving.redaction import current_request_id, install_log_redaction
from serving.refusals import RefusalTally
from serving.schemas import Applicant, BatchItem, BatchResult, Explanation, ProductInfo, ProductList, ScoreResult

if TYPE_CHECKING:
    from serving.scoring import ApplicantRejected, Scored, ServedModel

# The scoring path (pandas, LightGBM and scikit-learn) is imported where it runs, not here:
# `bentoml serve` imports this module in its leader process too, which never scores (the module's
# import: 4.5 s -> 2.7 s; a server is ready ~0.5 s sooner, as the worker's load stays serial). A worker
# has it imported by its champion-loading thread before it is ready.

logger = logging.getLogger("chronorisk.service")
# FastAPI's own /docs and /openapi.json would describe only these routes: the one document is /docs.json
info = FastAPI(title="chronorisk read-only endpoints", docs_url=None, redoc_url=None, openapi_url=None)


class Refused(Exception):
    """A read-only endpoint's refusal, answered in the scoring endpoints' shape: {request_id, status, errors}."""

    def __init__(self, status: int, field: str, rule: str, message: str) -> None:
        super().__init__(f"{status} {field}: {rule}")
        self.status, self.field, self.rule, self.message = status, field, rule, message


async def _refused(_: Any, exc: Exception) -> Response:
    assert isinstance(exc, Refused)
    return JSONResponse({"request_id": current_request_id.get() or "missing", "status": exc.status,
                         "errors": [{"field": exc.field, "rule": exc.rule, "message": exc.message}]},
                        status_code=exc.status)


info.add_exception_handler(Refused, _refused)


WORKERS = int(os.environ.get("CHRONORISK_WORKERS", "1"))


@bentoml.service(name="chronorisk", traffic={"timeout": 30}, workers=WORKERS)
@bentoml.asgi_app(info, path="/")
class ChronoriskService:
    def __init__(self) -> None:
        install_log_redaction()  # before anything can log a request's values
        os.umask(0o077)  # the audit database, its checkpoints, fetched models: owner-only
        self.settings = load_settings()
        self.products: list[str] = list(self.settings.serve_products)
        self.models: dict[str, ServedModel] = {}
        self.load_errors: dict[str, str] = {}  # the exception, for the server log only: it names paths
        self.load_reasons: dict[str, str] = {}  # what a client may be told (gatekeeper, /products, /model_card)
        self.pepper = self.settings.id_pepper.get_secret_value().encode()
        self.audit = open_audit_log(self.settings, writer=True)
        self.followups = FollowUps(self.audit)  # linked records for answers the client never got
        self.refusals = RefusalTally(self.audit, self.settings.refusal_audit_interval_s)  # before authentication
        self.keys = KeyStore(self.settings.keys_file)
        self.cards: dict[tuple[str, str, str], str] = {}  # (product, version, format) -> hash-checked model card
        # every worker of this server must have its champions before any answers ready (serving/readiness.py)
        self.ready_marks = ReadyMarks.of_this_server(bentoml.server_context.worker_index, WORKERS)
        threading.Thread(target=self._load_champions, name="load-champions", daemon=True).start()

    def _load_champions(self) -> None:
        from chronorisk.data.codes import who_icd10
        from chronorisk.model.registry import CHAMPION
        from serving.batch import load_served  # MLflow is imported here, off the start-up path

        who_icd10()  # the WHO ICD-10 list is parsed once, here, not on the first request

        for product in self.products:
            try:  # the version the launcher resolved for every worker (`chronorisk serve`), else the alias
                pinned = self.settings.serve_versions.get(product, CHAMPION)
                if pinned == NO_VERSION:
                    raise LookupError(f"{product}: no champion version was registered when the service was launched")
                self.models[product] = load_served(self.settings, product, pinned)
                logger.info("loaded %s champion v%s", product, self.models[product].version)
            except Exception as err:  # any failure keeps the service not ready, with its reason
                self.load_errors[product] = f"{type(err).__name__}: {err}"
                self.load_reasons[product] = public_load_reason(err)
                logger.error("NOT READY: the %s champion could not be loaded: %s", product, err)
        # Everything loaded so far (modules, models, schemas) lives as long as the worker: frozen out of the
        # cyclic collector, a full collection no longer walks it. A request allocates many small objects (a
        # batch of 100 year-long applicants ~40,000 validated records), and those walks were a third of a
        # /score_batch (685 -> 470 ms, in-process, measured here); collecting the youngest generation every
        # 50,000 allocations rather than 700 took another 15% (243 -> 208 ms), /score unchanged within the
        # noise. Nothing about an answer changes.
        gc.freeze()
        gc.set_threshold(50_000, 20, 20)
        if self._loaded():
            self.ready_marks.set()

    @bentoml.on_shutdown
    def _close_audit(self) -> None:
        """Write pending linked records, then sign the audit chain's head on the way out, so records cut
        off the end later are noticed."""
        self.ready_marks.clear()
        self.refusals.close()
        left = self.followups.flush(timeout_s=5.0)
        if left:
            logger.error("%d linked audit records not written at shutdown (audit log unavailable)", left)
        self.audit.close()

    def _loaded(self) -> bool:
        """This worker has every served product's champion."""
        return not self.load_errors and all(p in self.models for p in self.products)

    def __is_ready__(self) -> bool:
        return self._loaded() and self.ready_marks.all_set()

    def _audit(self, ctx: bentoml.Context, product: str, status: int, *, applicant: Applicant | None = None,
               result: ScoreResult | None = None, features: dict[str, float | None] | None = None,
               error: dict[str, Any] | None = None) -> None:
        served = self.models.get(product)
        self.audit.append(AuditRecord(
            request_id=ctx.request.headers.get("x-request-id", "missing"), time=utc_now(),
            endpoint=ctx.request.url.path, status_code=status,
            caller_key_id=ctx.request.headers.get("x-chronorisk-key-id"), product=product,
            model_name=served.model_name if served else None, model_version=served.version if served else None,
            input_sha256=ctx.request.headers.get("x-chronorisk-input-sha256"),
            member_ref=member_ref(applicant.applicant_id, self.pepper) if applicant else None,
            features=features, score=result.probability if result else None,
            risk_class=result.risk_class if result else None, decision=result.decision if result else None,
            reasons=[r.model_dump() for r in result.reasons] if result else None, error=error))

    def _one(self, product: str, applicant: Applicant, ctx: bentoml.Context) -> tuple[int, Any]:
        from serving.scoring import ApplicantRejected, score_applicant

        request_id = ctx.request.headers.get("x-request-id", "missing")
        today = datetime.now(UTC).date()
        try:
            scored = score_applicant(self.models[product], applicant, request_id, today, self.pepper)
        except ApplicantRejected as err:
            return _answer(err)
        return _answer(scored)

    @bentoml.api(route="/score")
    def score(self, ctx: bentoml.Context, product: str = Field(description="product name, e.g. diabetes"),
              applicant: Applicant = Field(description="the applicant's records")) -> ScoreResult:
        """Score one applicant: calibrated probability, risk class, decision, loading and reasons."""
        status, out = self._one(product, applicant, ctx)
        try:
            if status == 200:
                self._audit(ctx, product, 200, applicant=applicant, result=out.result, features=out.features)
                return out.result
            self._audit(ctx, product, status, applicant=applicant, error={"status": status, "errors": out["errors"]})
        except AuditUnavailable as err:
            return self._unrecorded(ctx, product, err)
        return _error(ctx, status, out["errors"])

    @bentoml.api(route="/score_batch")
    def score_batch(self, ctx: bentoml.Context, product: str = Field(description="product name"),
                    applicants: list[Annotated[Applicant | Any, Field(union_mode="left_to_right")]] = Field(
                        description="applicants (each an Applicant); one bad or malformed applicant gets its own "
                                    "error")) -> BatchResult:
        """Score up to the configured number of applicants; each slot has its own status."""
        from pydantic import ValidationError

        from serving.batch_scoring import score_applicants
        from serving.redaction import field_path

        items: dict[int, BatchItem] = {}
        slots: dict[int, dict[str, Any]] = {}  # what the audit keeps of each applicant: pseudonym, score, features
        valid: dict[int, Applicant] = {}
        for i, raw in enumerate(applicants):
            if isinstance(raw, Applicant):  # validated as the body was parsed, in the same pass
                valid[i] = raw
                continue
            try:  # what failed as an Applicant came as plain JSON: validated again, for its errors
                valid[i] = Applicant.model_validate(raw)
            except ValidationError as err:
                errors = [{"field": f"applicants[{i}]" + (f".{field_path(e['loc'])}" if e["loc"] else ""),
                           "rule": e["type"], "message": e["msg"]} for e in err.errors(include_input=False)]
                items[i] = BatchItem(index=i, status=422, errors=errors)
                slots[i] = {"index": i, "status": 422, "member_ref": None, "score": None, "decision": None,
                            "features": None}
        # every valid applicant in one vectorised pass, each answered as /score answers it alone
        outcomes = score_applicants(self.models[product], list(valid.values()),
                                    ctx.request.headers.get("x-request-id", "missing"), datetime.now(UTC).date(),
                                    self.pepper) if valid else []
        for (i, applicant), outcome in zip(valid.items(), outcomes, strict=True):
            status, out = _answer(outcome)
            slots[i] = {"index": i, "status": status, "member_ref": member_ref(applicant.applicant_id, self.pepper),
                        "score": out.result.probability if status == 200 else None,
                        "decision": out.result.decision if status == 200 else None,
                        "features": _finite(out.features) if status == 200 else None}
            if status == 200:
                items[i] = BatchItem(index=i, status=200, result=out.result)
            else:  # the record rules name "applicant.<path>"; in a batch the field is "applicants[i].<path>"
                errors = [{**e, "field": f"applicants[{i}]" + e["field"].removeprefix("applicant")}
                          for e in out["errors"]]
                items[i] = BatchItem(index=i, status=status, errors=errors)
        result = BatchResult(request_id=ctx.request.headers.get("x-request-id", "missing"), product=product,
                             results=[items[i] for i in range(len(applicants))])
        try:
            batch = [slots[i] for i in range(len(applicants))]
            self._audit(ctx, product, 200, error={"status": 200, "batch": batch})
        except AuditUnavailable as err:
            return self._unrecorded(ctx, product, err)
        return result

    @bentoml.api(route="/explain")
    def explain(self, ctx: bentoml.Context, product: str = Field(description="product name"),
                applicant: Applicant = Field(description="the applicant's records")) -> Explanation:
        """The full TreeSHAP vector on the log-odds scale; base value plus contributions = raw score."""
        status, out = self._one(product, applicant, ctx)
        try:
            if status != 200:
                failure = {"status": status, "errors": out["errors"]}
                self._audit(ctx, product, status, applicant=applicant, error=failure)
                return _error(ctx, status, out["errors"])
            self._audit(ctx, product, 200, applicant=applicant, result=out.result, features=out.features)
        except AuditUnavailable as err:
            return self._unrecorded(ctx, product, err)
        served = self.models[product]
        feats = served.model.features
        return Explanation(request_id=out.result.request_id, product=product, model_version=served.version,
                           base_value=float(out.contributions[-1]), raw_score=out.raw_score,
                           contributions={f: float(c) for f, c in zip(feats, out.contributions[:-1], strict=True)},
                           values=out.features)

    def _unrecorded(self, ctx: bentoml.Context, product: str, err: AuditUnavailable) -> Any:
        """The 503 for a record that was not committed in time. The database may still commit it (a hung
        server that resumes), so a linked record saying the client got 503 is queued behind it."""
        logger.error("audit log unavailable, answering 503: %s", err)
        request_id = ctx.request.headers.get("x-request-id", "missing")
        self.followups.add(undelivered_record(
            request_id, ctx.request.url.path, 503, "audit_unavailable",
            caller_key_id=ctx.request.headers.get("x-chronorisk-key-id"), product=product))
        return _error(ctx, 503, [{"field": "server", "rule": "audit_unavailable",
                                  "message": "the audit log cannot record this request; retry later"}])

    def _caller(self, x_api_key: str | None, product: str | None) -> AuthResult:
        """The key's verdict for the read-only endpoints; an unreadable key file is a 503, not a 500."""
        try:
            return self.keys.authenticate(x_api_key, product)
        except KeyStoreError as err:
            logger.error("API key store unreadable, answering 503: %s", err)
            raise Refused(503, "server", "key_store_unavailable",
                          "the API key store cannot be read; retry later") from err

    @info.get("/products")
    def list_products(self, x_api_key: str | None = Header(None)) -> ProductList:
        """Products served, the exact model versions answering, and the applicant input schema."""
        auth = self._caller(x_api_key, None)
        if not auth.ok:
            raise Refused(401, "header.x-api-key", "unauthorized", auth.reason)
        products = []
        for name in self.products:
            served = self.models.get(name)
            spec = served.model.spec if served else load_product(name)
            products.append(ProductInfo(
                product=name, title=spec.title, horizon_years=spec.horizon_years,
                model_name=served.model_name if served else None, model_version=served.version if served else None,
                loaded=served is not None, load_error=self.load_reasons.get(name),
                risk_classes=[c.model_dump() for c in spec.risk_classes]))
        return ProductList(products=products, input_schema=Applicant.model_json_schema())

    @info.get("/model_card/{product}")
    def model_card(self, product: str, fmt: str = Query("md", alias="format"),
                   x_api_key: str | None = Header(None)) -> Response:
        """The model card of the exact version answering for a product (Markdown, or HTML with ?format=html),
        as logged with its run and checked against the SHA-256 on the version's tags."""
        from chronorisk.model.card import fetch_model_card
        from chronorisk.model.registry import connect

        if not self._caller(x_api_key, None).ok:
            raise Refused(401, "header.x-api-key", "unauthorized", "a valid X-API-Key is required")
        if product not in self.products:
            raise Refused(404, "product", "unknown_product",
                          f"unknown product; known products: {', '.join(sorted(self.products))}")
        auth = self._caller(x_api_key, product)
        if not auth.ok:
            raise Refused(auth.status, "header.x-api-key", "forbidden", auth.reason)
        if fmt not in ("md", "html"):
            raise Refused(422, "query.format", "enum", "format must be md or html")
        served = self.models.get(product)
        if served is None:
            why = self.load_reasons.get(product, "still loading")
            raise Refused(503, "product", "model_not_loaded",
                          f"the {product} champion is not loaded ({why}); retry later")
        key = (product, served.version, fmt)
        if key not in self.cards:
            try:
                client = connect(self.settings.mlflow_tracking_uri)
                self.cards[key] = fetch_model_card(client, product, served.version, fmt)
            except LookupError as err:
                raise Refused(404, "product", "model_card_missing", str(err)) from err
        media = "text/html; charset=utf-8" if fmt == "html" else "text/markdown; charset=utf-8"
        return Response(self.cards[key], media_type=media,
                        headers={"x-model-version": served.version, "cache-control": "no-store"})


def _answer(outcome: Scored | ApplicantRejected) -> tuple[int, Any]:
    """An applicant's status and what its answer is made of: the Scored, or the errors of a 422."""
    from serving.scoring import ApplicantRejected

    if isinstance(outcome, ApplicantRejected):
        return 422, {"errors": [e.model_dump() for e in outcome.errors], "features": None}
    return 200, outcome


def _finite(features: dict[str, float | None]) -> dict[str, float | None]:
    """A feature vector as JSON can hold it: NaN (a missing value) becomes None."""
    return {k: (None if v is None or v != v else float(v)) for k, v in features.items()}


def _error(ctx: bentoml.Context, status: int, errors: list[dict[str, Any]]) -> Any:
    """An error answer; BentoML sends a returned Response as it is, whatever the declared type, but
    copies the context's status onto it, so the context must carry the status too."""
    ctx.response.status_code = status
    return JSONResponse({"request_id": ctx.request.headers.get("x-request-id", "missing"), "status": status,
                         "errors": errors}, status_code=status)


def public_load_reason(err: BaseException) -> str:
    """What a client may learn of a failed load: its kind, never the exception text, which names
    temporary folders, artifact paths and the registry's internals (the server log has it all)."""
    from chronorisk.model.bundle import ModelLoadError

    if type(err) is LookupError:  # chronorisk.model.registry.resolve: the alias points at nothing
        kind = "no champion version is registered"
    elif isinstance(err, ModelLoadError):
        kind = "the registered model failed its integrity checks"
    else:
        kind = "the model could not be loaded"
    return f"{kind}; the server log says why"


# The decorator turned the class into a bentoml Service, which takes middlewares.
ChronoriskService.add_asgi_middleware(Gatekeeper)  # type: ignore[attr-defined]
ChronoriskService.add_asgi_middleware(OpenAPIDocument, service=ChronoriskService)  # type: ignore[attr-defined]
