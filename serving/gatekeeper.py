"""The gatekeeper: an ASGI middleware in front of the scoring endpoints.

It refuses what must never reach the model, before any parsing work and in a fixed order: too many
uploads in progress or too many requests being scored (fast 503s, shed before the key is even looked
at, so an overloaded server answers them at the cost of a counter), missing or bad API key (401,
from the header, before the body is read), oversized body (413), wrong media type such as pickle
(415), a body that does not arrive within body_timeout_s (408), too many requests being scored (fast
503), unreadable or too deeply nested JSON (422), a body that is not an object with a string product
and known fields only (422), unknown product (404), a key not allowed that product (403), an
oversized batch (413). Connections still sending their body are counted apart from requests being
scored, so stalled uploads cannot take the scoring slots. It gives every request an id, turns the
framework's validation errors into 422 answers that name each field path and rule, and audits every
refusal: after authentication one record each, committed before the answer (if the audit log is
down, 503); before it, in aggregate per interval (`serving.refusals`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio
import numpy as np
from pydantic_core import from_json

from serving.framework_refusals import framework_refusal, json_answer
from serving.keys import AuthResult, KeyStoreError
from serving.redaction import current_request_id, field_path
from serving.routes import ENDPOINTS, SCORING, UNDECLARED, Endpoint, endpoint_of

logger = logging.getLogger("chronorisk.gatekeeper")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
MAX_DEPTH = 32
INTERNAL_HEADERS = {b"x-request-id", b"x-chronorisk-key-id", b"x-chronorisk-input-sha256"}  # set here, never by clients


_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")


def _depth_ok(body: bytes, limit: int = MAX_DEPTH) -> bool:
    """Nesting depth of a JSON text, counted without parsing (strings may hide brackets, so this
    over-counts at worst, which only refuses absurd bodies sooner): the running sum of opening minus
    closing brackets, in numpy (a 5 MB batch has ~10^5 brackets: 13 ms as a Python loop)."""
    brackets = np.frombuffer(body.translate(None, _NOT_BRACKETS), dtype=np.uint8)
    steps = np.where((brackets == 0x5B) | (brackets == 0x7B), 1, -1)
    return int(np.cumsum(steps).max(initial=0)) <= limit


class Gatekeeper:
    def __init__(self, app: Callable[..., Awaitable[None]], **_: Any) -> None:
        self.app = app
        self._reading = 0  # connections whose body is still arriving: a stalled client holds one of these
        self._inflight = 0  # requests read in full and being scored

    def _service(self) -> Any:
        import bentoml

        return bentoml.get_current_service()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = endpoint_of(scope["path"]) if scope["type"] == "http" else None
        if endpoint is None:  # not HTTP, or a route declared open (serving/routes.py)
            await self.app(scope, receive, send)
            return
        if endpoint.guard != SCORING:
            await self._audited_read(scope, receive, send, endpoint)
            return
        svc = self._service()
        limits = svc.settings
        request_id = uuid.uuid4().hex
        current_request_id.set(request_id)  # redacted log lines name the request, never its values
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        ctx: dict[str, Any] = {"request_id": request_id, "endpoint": scope["path"], "key_id": None, "product": None,
                               "input_sha256": None}
        if self._reading >= limits.max_reading:
            await self._unauthenticated(send, svc, ctx, 503, "server", "too_many_uploads",
                                        f"more than {limits.max_reading} uploads in progress; retry shortly",
                                        [(b"retry-after", b"1")])
            return
        if self._inflight >= limits.max_concurrency:  # shed load first: refusing must cost less than scoring
            await self._unauthenticated(send, svc, ctx, 503, "server", "overloaded",
                                        f"more than {limits.max_concurrency} requests in flight; retry shortly",
                                        [(b"retry-after", b"1")])
            return
        auth = await self._authenticate(send, svc, ctx, headers, None)  # from the header: before any body is read
        if auth is None:
            return
        ctx["key_id"] = auth.key_id
        if not auth.ok:
            await self._unauthenticated(send, svc, ctx, 401, "header.x-api-key", "unauthorized", auth.reason)
            return
        if scope.get("method", "POST") != "POST":
            await self._refuse(send, svc, ctx, 405, "method", "method_not_allowed", "this endpoint takes POST only",
                               extra_headers=[(b"allow", b"POST")])
            return
        self._reading += 1
        try:
            body = await self._read_body(receive, send, svc, headers, ctx)
        finally:
            self._reading -= 1
        if body is None:
            return
        if self._inflight >= limits.max_concurrency:  # filled up while this body arrived: audited one by one
            await self._refuse(send, svc, ctx, 503, "server", "overloaded",
                               f"more than {limits.max_concurrency} requests in flight; retry shortly",
                               extra_headers=[(b"retry-after", b"1")])
            return
        self._inflight += 1
        try:
            await self._guard(scope, receive, send, svc, headers, ctx, body)
        finally:
            self._inflight -= 1

    async def _audited_read(self, scope: Scope, receive: Receive, send: Send, declared: Endpoint) -> None:
        """GET /products and /model_card/<product>: the answer is held until its record is committed (a 401 is
        counted in the aggregate instead), as for the scoring endpoints; if it cannot be, the answer is a 503.
        A path no route declares is refused without a valid key, so a new endpoint is never open by default."""
        from serving.audit import AuditRecord, AuditUnavailable, utc_now

        svc = self._service()
        request_id = uuid.uuid4().hex
        current_request_id.set(request_id)
        endpoint = declared.audit_name  # never the client's path text
        product = scope["path"].removeprefix("/model_card/") if endpoint == "/model_card" else None
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        try:
            auth = svc.keys.authenticate(headers.get("x-api-key"), None)
            key_id, key_ok = auth.key_id, auth.ok
        except KeyStoreError:
            key_id, key_ok = None, False
        if declared is UNDECLARED and not key_ok:
            await self._unauthenticated(send, svc, {"request_id": request_id, "endpoint": endpoint}, 401,
                                        "header.x-api-key", "unauthorized", "a valid X-API-Key header is required")
            return
        held: dict[str, Any] = {"body": b""}

        async def hold(message: Message) -> None:
            if message["type"] == "http.response.start":
                held["start"] = message
            elif message["type"] == "http.response.body":
                held["body"] += message.get("body", b"")

        await self.app(scope, receive, hold)
        start = held.get("start") or {"type": "http.response.start", "status": 500, "headers": []}
        status = int(start["status"])
        if status >= 400 and not json_answer(start):  # the framework's plain-text refusal: a path it cannot
            start, held["body"] = framework_refusal(start, request_id)  # route (a newline in it), a method it lacks
        ctx = {"request_id": request_id, "endpoint": endpoint}
        if status == 401:
            svc.refusals.add(endpoint, 401, "unauthorized")
        else:
            record = AuditRecord(request_id=request_id, time=utc_now(), endpoint=endpoint, status_code=status,
                                 caller_key_id=key_id, product=product if product in svc.products else None,
                                 model_name=None, model_version=None, input_sha256=None, member_ref=None,
                                 features=None, score=None, risk_class=None, decision=None, reasons=None,
                                 error=None if status < 400 else {"status": status})
            try:
                await anyio.to_thread.run_sync(svc.audit.append, record)
            except AuditUnavailable as err:
                logger.error("audit log unavailable, answering 503: %s", err)
                await self._send_answer(send, ctx, 503, [{"field": "server", "rule": "audit_unavailable",
                                                          "message": "the audit log cannot record this request; "
                                                                     "retry later"}])
                return
        await send({**start, "headers": [*start.get("headers", []), (b"x-request-id", request_id.encode())]})
        await send({"type": "http.response.body", "body": held["body"]})

    async def _unauthenticated(self, send: Send, svc: Any, ctx: dict[str, Any], status: int, field: str, rule: str,
                               message: str, extra_headers: list[tuple[bytes, bytes]] | None = None) -> None:
        """A refusal before authentication: counted into the interval's aggregate record, not an fsync of its own."""
        svc.refusals.add(ctx["endpoint"], status, rule)
        await self._send_answer(send, ctx, status, [{"field": field, "rule": rule, "message": message}],
                                extra_headers)

    async def _read_body(self, receive: Receive, send: Send, svc: Any, headers: dict[str, str],
                         ctx: dict[str, Any]) -> bytes | None:
        """The whole body within body_timeout_s, or None once a refusal (413, 415, 408) has gone out."""
        limits = svc.settings
        declared = headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limits.max_body_bytes:
            await self._refuse(send, svc, ctx, 413, "body", "too_large",
                               f"body of {declared} bytes exceeds {limits.max_body_bytes}")
            return None
        media = headers.get("content-type", "application/json").split(";")[0].strip().lower()
        if media != "application/json":
            await self._refuse(send, svc, ctx, 415, "content-type", "unsupported_media_type",
                               "this media type is not accepted; send application/json")
            return None
        body = b""
        more = True
        with anyio.move_on_after(limits.body_timeout_s) as reading:
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return None  # nobody to answer
                body += message.get("body", b"")
                more = message.get("more_body", False)
                if len(body) > limits.max_body_bytes:
                    await self._refuse(send, svc, ctx, 413, "body", "too_large",
                                       f"body exceeds {limits.max_body_bytes} bytes")
                    return None
        if reading.cancelled_caught:
            await self._refuse(send, svc, ctx, 408, "body", "body_timeout",
                               f"the body did not arrive within {limits.body_timeout_s:g} s")
            return None
        return body

    async def _guard(self, scope: Scope, receive: Receive, send: Send, svc: Any, headers: dict[str, str],
                     ctx: dict[str, Any], body: bytes) -> None:
        ctx["input_sha256"] = hashlib.sha256(body).hexdigest()
        if not _depth_ok(body):
            await self._refuse(send, svc, ctx, 422, "body", "too_deep", f"JSON nested deeper than {MAX_DEPTH}")
            return
        try:  # pydantic's parser: a third of json.loads' time on a year of wearable days
            payload = from_json(body)
        except (ValueError, RecursionError):
            await self._refuse(send, svc, ctx, 422, "body", "invalid_json", "the body is not valid JSON")
            return
        product = payload.get("product") if isinstance(payload, dict) else None
        # only a product this service knows is recorded: any other string is the client's and could carry anything
        ctx["product"] = product if isinstance(product, str) and product in svc.products else None
        if not isinstance(payload, dict):
            await self._refuse(send, svc, ctx, 422, "body", "model_type", "the body must be a JSON object")
            return
        if not isinstance(product, str):
            missing = "product" not in payload
            await self._refuse(send, svc, ctx, 422, "product", "missing" if missing else "string_type",
                               "product is required" if missing else "product must be a string")
            return
        extra = sorted(set(payload) - ENDPOINTS[scope["path"]].body_fields)
        if extra:
            await self._answer(send, svc, ctx, 422, [{"field": name, "rule": "extra_forbidden",
                                                      "message": "Extra inputs are not permitted"} for name in extra])
            return
        if product not in svc.products:
            known = sorted(svc.products)
            await self._refuse(send, svc, ctx, 404, "product", "unknown_product",
                               f"unknown product; known products: {', '.join(known)}")
            return
        auth = await self._authenticate(send, svc, ctx, headers, product)
        if auth is None:
            return
        if not auth.ok:
            await self._refuse(send, svc, ctx, auth.status, "header.x-api-key", "forbidden", auth.reason)
            return
        if product not in svc.models:  # still loading, or it could not be loaded: refused, never a KeyError
            reason = svc.load_reasons.get(product, "still loading")  # never the exception: it names paths
            await self._refuse(send, svc, ctx, 503, "product", "model_not_loaded",
                               f"the {product} champion is not loaded ({reason}); retry later")
            return
        if scope["path"] == "/score_batch":
            items = payload.get("applicants")
            if isinstance(items, list) and len(items) > svc.settings.max_batch:
                await self._refuse(send, svc, ctx, 413, "applicants", "too_many",
                                   f"{len(items)} applicants; at most {svc.settings.max_batch} per batch")
                return
        # The service reads the first of each header, so a client's own copies of these must go:
        # they would choose the audited request id, caller key id and input hash.
        client_headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() not in INTERNAL_HEADERS]
        scope = {**scope, "headers": [*client_headers, (b"x-request-id", ctx["request_id"].encode()),
                                      (b"x-chronorisk-key-id", str(auth.key_id).encode()),
                                      (b"x-chronorisk-input-sha256", ctx["input_sha256"].encode())]}
        await self._forward(scope, body, receive, send, svc, ctx)

    @staticmethod
    def _undelivered(svc: Any, ctx: dict[str, Any], status: int, why: str) -> None:
        from serving.audit_followup import undelivered_record

        svc.followups.add(undelivered_record(ctx["request_id"], ctx["endpoint"], status, why,
                                             caller_key_id=ctx["key_id"], product=ctx["product"]))

    async def _forward(self, scope: Scope, body: bytes, receive: Receive, send: Send, svc: Any,
                       ctx: dict[str, Any]) -> None:
        """Pass the request on with its body replayed; rewrite validation failures to audited 422s.

        The client's own channel is watched meanwhile: a client that hangs up before the answer goes
        out, or BentoML's timeout answering 504 while the service goes on, leaves a record standing for
        an answer never delivered, so a linked record says what the client got (499: nothing)."""
        sent = False
        state = {"gone": False, "delivered": False}

        async def watch() -> None:
            while not state["delivered"]:
                if (await receive())["type"] == "http.disconnect":
                    state["gone"] = True
                    return

        async def replay() -> Message:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        held: dict[str, Any] = {}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body"):
                if state["gone"] and not state["delivered"]:
                    self._undelivered(svc, ctx, 499, "client_disconnected")
                state["delivered"] = True
            if message["type"] == "http.response.start" and message["status"] == 400:
                held["start"] = message
                return
            if "start" in held and message["type"] == "http.response.body":
                held["body"] = held.get("body", b"") + message.get("body", b"")
                if not message.get("more_body"):
                    await self._rewrite_validation(send, svc, ctx, held["body"])
                return
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"x-request-id", ctx["request_id"].encode())]}
            await send(message)

        try:
            async with anyio.create_task_group() as group:
                group.start_soon(watch)
                await self.app(scope, replay, capture)
                group.cancel_scope.cancel()
        except BaseException as err:
            if not state["delivered"]:  # cancelled by BentoML's timeout (it answers 504), or failed (500)
                timed_out = isinstance(err, anyio.get_cancelled_exc_class())
                self._undelivered(svc, ctx, 504 if timed_out else 500,
                                  "not_answered_in_time" if timed_out else "server_error")
            raise

    async def _rewrite_validation(self, send: Send, svc: Any, ctx: dict[str, Any], raw: bytes) -> None:
        try:
            detail = json.loads(raw).get("detail") or []
        except ValueError:
            detail = []
        errors = [{"field": field_path(d.get("loc", [])), "rule": d.get("type", "invalid"),
                   "message": d.get("msg", "invalid value")} for d in detail if isinstance(d, dict)]
        if not errors:
            errors = [{"field": "body", "rule": "invalid", "message": "the request does not match the schema"}]
        await self._answer(send, svc, ctx, 422, errors)

    async def _authenticate(self, send: Send, svc: Any, ctx: dict[str, Any], headers: dict[str, str],
                            product: str | None) -> AuthResult | None:
        """The key's verdict; None once an audited 503 has gone out because the key file cannot be read."""
        try:
            return svc.keys.authenticate(headers.get("x-api-key"), product)  # type: ignore[no-any-return]
        except KeyStoreError as err:
            logger.error("API key store unreadable, answering 503: %s", err)
            await self._refuse(send, svc, ctx, 503, "server", "key_store_unavailable",
                               "the API key store cannot be read; retry later")
            return None

    async def _refuse(self, send: Send, svc: Any, ctx: dict[str, Any], status: int, field: str, rule: str,
                      message: str, extra_headers: list[tuple[bytes, bytes]] | None = None) -> None:
        await self._answer(send, svc, ctx, status, [{"field": field, "rule": rule, "message": message}], extra_headers)

    async def _answer(self, send: Send, svc: Any, ctx: dict[str, Any], status: int, errors: list[dict[str, str]],
                      extra_headers: list[tuple[bytes, bytes]] | None = None) -> None:
        from serving.audit import AuditRecord, AuditUnavailable, utc_now

        record = AuditRecord(request_id=ctx["request_id"], time=utc_now(), endpoint=ctx["endpoint"],
                             status_code=status, caller_key_id=ctx["key_id"], product=ctx["product"],
                             model_name=None, model_version=None, input_sha256=ctx["input_sha256"], member_ref=None,
                             features=None, score=None, risk_class=None, decision=None, reasons=None,
                             error={"status": status, "errors": errors})
        try:
            await anyio.to_thread.run_sync(svc.audit.append, record)
        except AuditUnavailable as err:
            logger.error("audit log unavailable, answering 503: %s", err)
            self._undelivered(svc, ctx, 503, "audit_unavailable")  # the refusal's record may still commit
            status, errors = 503, [{"field": "server", "rule": "audit_unavailable",
                                    "message": "the audit log cannot record this request; retry later"}]
        await self._send_answer(send, ctx, status, errors, extra_headers)

    @staticmethod
    async def _send_answer(send: Send, ctx: dict[str, Any], status: int, errors: list[dict[str, str]],
                           extra_headers: list[tuple[bytes, bytes]] | None = None) -> None:
        payload = json.dumps({"request_id": ctx["request_id"], "status": status, "errors": errors}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                                (b"x-request-id", ctx["request_id"].encode()), *(extra_headers or [])]})
        await send({"type": "http.response.body", "body": payload})
