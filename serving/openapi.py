"""The OpenAPI document of the running service, as the server really answers.

BentoML 1.4 builds `/docs.json` from each `@bentoml.api` method's signature and lists only 200
plus its own 400/404/500 exception bodies (`{"error": ...}`); it flattens `float | None` into
`number`, documents the mounted FastAPI routes as JSON with an optional `x-api-key` parameter,
and knows nothing of the gatekeeper's refusals. It has no hook to amend the document, so this
module starts from BentoML's (kept for its infrastructure endpoints and title) and rewrites the
chronorisk endpoints from the pydantic models the service returns, and a middleware answers
`GET /docs.json` with the result (the Swagger page at `/` reads it too).

The document is OpenAPI 3.1, whose schema dialect is the JSON Schema that pydantic writes, so
nullable fields stay `anyOf [..., null]` exactly as the server serialises them. Every refusal is
`ErrorAnswer` (`{"request_id", "status", "errors": [{"field", "rule", "message"}]}`), listed per
endpoint with the statuses the gatekeeper and the handlers can give; the API key is an `apiKey`
security scheme on the `X-API-Key` header.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from serving.schemas import Applicant, BatchResult, ErrorAnswer, Explanation, ProductList, ScoreResult

__all__ = ["DOCUMENT_PATH", "OpenAPIDocument", "openapi_document"]

DOCUMENT_PATH = "/docs.json"
PAGE_PATH, PAGE_SCRIPT_PATH = "/docs", "/docs/swagger-init.js"
# The one page of the API, every asset from this server: Swagger UI's own files, which BentoML ships and
# serves under /static_content/, and the start-up script below (no CDN, no third-party script; the
# online validator badge, which would fetch from swagger.io, is off).
PAGE = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>chronorisk scoring API</title>
<link rel="stylesheet" href="/static_content/swagger-ui.css">
<link rel="icon" type="image/png" href="/static_content/favicon-light-32x32.png"></head>
<body><div id="swagger-ui"></div>
<script src="/static_content/swagger-ui-bundle.js"></script>
<script src="/docs/swagger-init.js"></script></body></html>
"""
PAGE_SCRIPT = b"""window.onload = function () {
  window.ui = SwaggerUIBundle({url: "/docs.json", dom_id: "#swagger-ui", deepLinking: true, validatorUrl: null,
                               presets: [SwaggerUIBundle.presets.apis]});
};
"""
REF = "#/components/schemas/{model}"
SECURITY: list[dict[str, list[str]]] = [{"ApiKey": []}]
REQUEST_ID_HEADER = {"x-request-id": {"description": "the request id the audit log keeps (quote it later)",
                                      "schema": {"type": "string"}}}

# What each refusal means, per status; an endpoint lists the ones it can give.
REFUSALS = {
    401: "no valid X-API-Key (missing, unknown or revoked)",
    403: "the key is not allowed this product",
    404: "unknown product (the message lists the known ones)",
    408: "the body did not arrive within the body timeout",
    413: "body over the size limit, or more applicants than the batch limit",
    415: "the body is not application/json",
    422: "invalid JSON, or a field that breaks a rule: each error names its field path and rule",
    503: "overloaded, too many uploads in progress (both with Retry-After), the model not loaded, "
         "or the audit log or key store unavailable: retry later",
}
SCORING_REFUSALS = (401, 403, 404, 408, 413, 415, 422, 503)
MODEL_CARD_REFUSALS = (401, 403, 404, 422, 503)
PRODUCTS_REFUSALS = (401, 503)


def _components() -> dict[str, Any]:
    """The request and answer models as components, with pydantic's own JSON Schema (draft 2020-12)."""
    models: list[tuple[type[BaseModel], Any]] = [(Applicant, "validation")] + [
        (m, "serialization") for m in (ScoreResult, BatchResult, Explanation, ProductList, ErrorAnswer)]
    _, top = models_json_schema(models, ref_template=REF)
    return dict(top.get("$defs", {}))


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "headers": REQUEST_ID_HEADER,
            "content": {"application/json": {"schema": schema}}}


def _refusals(statuses: tuple[int, ...]) -> dict[str, Any]:
    return {str(s): _json({"$ref": REF.format(model="ErrorAnswer")}, REFUSALS[s]) for s in statuses}


def _body(products: list[str], fields: dict[str, Any], description: str) -> dict[str, Any]:
    product = {"type": "string", "enum": sorted(products), "description": "product name (GET /products lists them)"}
    return {"required": True, "description": description, "content": {"application/json": {"schema": {
        "type": "object", "additionalProperties": False, "required": ["product", *fields],
        "properties": {"product": product, **fields}}}}}


def _scoring(svc: Any, bento: Any) -> dict[str, Any]:
    applicant = {"$ref": REF.format(model="Applicant")}
    batch = {"type": "array", "maxItems": svc.settings.max_batch, "items": {
        "description": "an Applicant (components/schemas/Applicant); a slot that is not one gets its own 422 "
                       "in results, the others are still scored"}}
    answers = {"/score": ("ScoreResult", {"applicant": applicant}),
               "/explain": ("Explanation", {"applicant": applicant}),
               "/score_batch": ("BatchResult", {"applicants": batch})}
    paths = {}
    for name, api in bento.apis.items():
        model, fields = answers[api.route]
        paths[api.route] = {"post": {
            "operationId": name, "tags": ["chronorisk"], "security": SECURITY,
            "summary": (api.doc or "").strip().splitlines()[0] if api.doc else name,
            "description": f"{(api.doc or '').strip()}\n\nAny other method answers 405 with `Allow: POST`.",
            "requestBody": _body(svc.products, fields, "the product and the applicant's records"),
            "responses": {"200": _json({"$ref": REF.format(model=model)}, "the answer"),
                          **_refusals(SCORING_REFUSALS)}}}
    return paths


def _read_only(svc: Any) -> dict[str, Any]:
    product = {"name": "product", "in": "path", "required": True,
               "schema": {"type": "string", "enum": sorted(svc.products)}, "description": "product name"}
    fmt = {"name": "format", "in": "query", "required": False, "description": "md (Markdown) or html",
           "schema": {"type": "string", "enum": ["md", "html"], "default": "md"}}
    card = {"description": "the model card of the version answering (x-model-version names it)",
            "headers": {**REQUEST_ID_HEADER, "x-model-version": {"schema": {"type": "string"}}},
            "content": {"text/markdown": {"schema": {"type": "string"}}, "text/html": {"schema": {"type": "string"}}}}
    return {
        "/products": {"get": {
            "operationId": "list_products", "tags": ["chronorisk"], "security": SECURITY,
            "summary": "Products served, the exact model versions answering, and the applicant input schema",
            "responses": {"200": _json({"$ref": REF.format(model="ProductList")}, "the products"),
                          **_refusals(PRODUCTS_REFUSALS)}}},
        "/model_card/{product}": {"get": {
            "operationId": "model_card", "tags": ["chronorisk"], "security": SECURITY,
            "summary": "The model card of the exact version answering for a product",
            "description": "Markdown by default, HTML with ?format=html; checked against the SHA-256 logged with "
                           "the version.",
            "parameters": [product, fmt],
            "responses": {"200": card, **_refusals(MODEL_CARD_REFUSALS)}}},
    }


def openapi_document(svc: Any, bento: Any) -> dict[str, Any]:
    """The service's OpenAPI 3.1 document. svc is the running service instance (its settings and
    products), bento the BentoML Service object that built the base document."""
    base = bento.openapi_spec.asdict()
    infra = {path: item for path, item in base["paths"].items() if path in ("/livez", "/healthz", "/readyz",
                                                                            "/metrics")}
    if "/readyz" in infra:
        infra["/readyz"]["get"]["responses"]["503"] = {"description": "not ready: a champion is still loading or "
                                                                      "could not be loaded"}
    info = {**base["info"], "title": "chronorisk", "description": (
        "Chronic-disease risk scores for insurance underwriting. Send the key from `chronorisk keys create` in "
        "X-API-Key. Every answer carries x-request-id, the id of its audit record.")}
    info.pop("contact", None)
    if info.get("version") in (None, "", "None"):  # BentoML writes "None" outside a built Bento
        info["version"] = _package_version()
    return {"openapi": "3.1.0", "info": info, "servers": [{"url": "."}],
            "tags": [{"name": "chronorisk", "description": "scoring and read-only endpoints (X-API-Key)"},
                     *[t for t in base.get("tags", []) if t.get("name") == "Infrastructure"]],
            "paths": {**infra, **_scoring(svc, bento), **_read_only(svc)},
            "components": {"schemas": _components(),
                           "securitySchemes": {"ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                                                          "description": "a key from `chronorisk keys create`"}}}}


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("chronorisk")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unreleased"


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


class OpenAPIDocument:
    """ASGI middleware answering GET /docs.json with `openapi_document` (built once per worker), and /docs
    with the page that renders it."""

    def __init__(self, app: Callable[..., Awaitable[None]], service: Any = None, **_: Any) -> None:
        self.app = app
        self.bento = service
        self._body: bytes | None = None

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                      send: Callable[[Message], Awaitable[None]]) -> None:
        path = scope.get("path") if scope["type"] == "http" and scope.get("method") in ("GET", "HEAD") else None
        if path in (PAGE_PATH, PAGE_SCRIPT_PATH):
            await _answer(send, scope, PAGE if path == PAGE_PATH else PAGE_SCRIPT,
                          b"text/html; charset=utf-8" if path == PAGE_PATH else b"text/javascript; charset=utf-8")
            return
        if path != DOCUMENT_PATH:
            await self.app(scope, receive, send)
            return
        if self._body is None:
            import bentoml

            self._body = json.dumps(openapi_document(bentoml.get_current_service(), self.bento)).encode()
        await _answer(send, scope, self._body, b"application/json")


async def _answer(send: Callable[[Message], Awaitable[None]], scope: Scope, body: bytes, media: bytes) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", media), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body if scope.get("method") == "GET" else b""})
