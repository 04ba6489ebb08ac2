"""Every route the service answers has a guard declared in serving/routes.py, so a new endpoint
cannot skip authentication, load limits and audit by being forgotten in a list."""

from __future__ import annotations

from typing import Any

import pytest

from serving.routes import AUDITED_READ, ENDPOINTS, OPEN_PATHS, SCORING, UNDECLARED, endpoint_of
from serving.service import ChronoriskService


def _mounted_routes() -> list[Any]:
    routes = []
    for app, _path, _name in ChronoriskService.mount_apps:
        for route in app.routes:
            routes.extend(getattr(route, "original_router", route).routes
                          if hasattr(route, "original_router") else [route])
    return routes


def test_the_service_has_the_endpoints_this_test_walks():
    """Guards the walk below: if BentoML renamed its attributes, the test would pass on nothing."""
    assert {api.route for api in ChronoriskService.apis.values()} >= {"/score", "/explain"}
    assert {r.path for r in _mounted_routes()} >= {"/products"}


@pytest.mark.parametrize("api", sorted(ChronoriskService.apis), ids=str)
def test_every_bentoml_api_is_a_declared_scoring_endpoint_with_its_arguments(api):
    method = ChronoriskService.apis[api]
    declared = ENDPOINTS.get(method.route)
    assert declared is not None, f"{method.route} has no entry in serving/routes.py ENDPOINTS"
    assert (declared.guard, declared.body_fields) == (SCORING, frozenset(method.input_spec.model_fields))


@pytest.mark.parametrize("route", _mounted_routes(), ids=lambda r: r.path)
def test_every_mounted_route_is_a_declared_audited_read(route):
    declared = ENDPOINTS.get(route.path)
    assert declared is not None, f"{route.path} has no entry in serving/routes.py ENDPOINTS"
    assert declared.guard == AUDITED_READ


def test_every_declared_endpoint_is_served():
    served = {a.route for a in ChronoriskService.apis.values()} | {r.path for r in _mounted_routes()}
    assert set(ENDPOINTS) <= served


@pytest.mark.parametrize("path", ["/admin", "/score/", "/products/../score", "/model_cards", "/internal/dump"])
def test_a_path_nobody_declared_is_guarded_not_open(path):
    assert (endpoint_of(path), UNDECLARED.guard) == (UNDECLARED, AUDITED_READ)


@pytest.mark.parametrize("path", sorted(OPEN_PATHS))
def test_only_the_probes_and_the_api_document_are_open(path):
    assert endpoint_of(path) is None


def test_a_parametrised_route_resolves_to_its_declaration():
    assert endpoint_of("/model_card/diabetes") is ENDPOINTS["/model_card/{product}"]
