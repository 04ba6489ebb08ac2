"""The framework's own plain-text refusals (a path it cannot route, a method it lacks) reshaped as
every other refusal: the OpenAPI document's ErrorAnswer, so a client parses one body shape.
"""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from typing import Any

Message = MutableMapping[str, Any]


def json_answer(start: Message) -> bool:
    return any(k.lower() == b"content-type" and v.split(b";")[0].strip() == b"application/json"
               for k, v in start.get("headers", []))


FRAMEWORK_RULES = {404: ("path", "not_found", "no such endpoint or product"),
                   405: ("method", "method_not_allowed", "this endpoint does not take this method")}


def framework_refusal(start: Message, request_id: str) -> tuple[Message, bytes]:
    """A refusal the framework answered in plain text, in the shape of every other refusal (the OpenAPI
    document's ErrorAnswer); an Allow header is kept."""
    status = int(start["status"])
    field, rule, message = FRAMEWORK_RULES.get(status, ("request", "refused", "the request was refused"))
    body = json.dumps({"request_id": request_id, "status": status,
                       "errors": [{"field": field, "rule": rule, "message": message}]}).encode()
    allow = [(k, v) for k, v in start.get("headers", []) if k.lower() == b"allow"]
    return {"type": "http.response.start", "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                        *allow]}, body
