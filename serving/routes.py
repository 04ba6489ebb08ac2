"""Every route the server answers and the guard it passes, declared once.

The gatekeeper reads this table, so a route is guarded by default: one that is not declared
open is authenticated and audited before anything answers it, and tests/unit/test_routes.py
fails for a service endpoint that has no declared guard.
"""

from __future__ import annotations

from dataclasses import dataclass

SCORING = "scoring"  # key, load limits, body rules, one audit record per request (serving/gatekeeper.py)
AUDITED_READ = "audited_read"  # key checked, the answer held until its audit record is committed
OPEN = "open"  # probes and the API document: no personal data in or out, so no key and no record


@dataclass(frozen=True)
class Endpoint:
    guard: str
    body_fields: frozenset[str] = frozenset()  # a scoring endpoint's arguments; any other field is refused
    audit_name: str = ""  # the endpoint an audit record names: never the client's path text


ENDPOINTS: dict[str, Endpoint] = {
    "/score": Endpoint(SCORING, frozenset({"product", "applicant"}), "/score"),
    "/explain": Endpoint(SCORING, frozenset({"product", "applicant"}), "/explain"),
    "/score_batch": Endpoint(SCORING, frozenset({"product", "applicants"}), "/score_batch"),
    "/products": Endpoint(AUDITED_READ, audit_name="/products"),
    "/model_card/{product}": Endpoint(AUDITED_READ, audit_name="/model_card"),
}
# BentoML's own routes: liveness, readiness and metrics probes, the OpenAPI document and its page.
OPEN_PATHS = frozenset({"/", "/docs", "/docs/swagger-init.js", "/docs.json", "/healthz", "/livez", "/readyz",
                        "/metrics"})
OPEN_PREFIXES = ("/static_content/",)
UNDECLARED = Endpoint(AUDITED_READ, audit_name="(undeclared path)")


def endpoint_of(path: str) -> Endpoint | None:
    """The declared endpoint a path reaches; None for an open route; UNDECLARED for anything else."""
    if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
        return None
    if path in ENDPOINTS:
        return ENDPOINTS[path]
    for pattern, endpoint in ENDPOINTS.items():
        prefix, brace, _ = pattern.partition("{")
        if brace and path.startswith(prefix):
            return endpoint
    return UNDECLARED
