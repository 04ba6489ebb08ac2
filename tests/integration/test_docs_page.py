"""The API's one page, GET /docs, in real Chromium against the real server: rendered offline from the
server's own assets, with /score documented under the X-API-Key scheme (issue 18)."""

from __future__ import annotations

import shutil
import subprocess

import httpx


def _chromium() -> str:
    exe = shutil.which("chromium")
    if exe is None:  # make test installs it first; a bare pytest run installs it here, never skips
        subprocess.run(["bash", "scripts/ensure_chromium.sh"], check=False)
        exe = shutil.which("chromium")
    assert exe, "Debian's chromium is missing and scripts/ensure_chromium.sh could not install it"
    return exe


def test_the_docs_page_renders_offline_with_score_documented(scoring_server, tmp_path):
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    elsewhere: list[str] = []
    shot = tmp_path / "docs.png"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_chromium(), args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))

            def only_this_server(route):  # anything else is refused, so the page must do without it
                if route.request.url.startswith(scoring_server.url):
                    route.continue_()
                else:
                    elsewhere.append(route.request.url)
                    route.abort()

            page.route("**/*", only_this_server)
            page.goto(f"{scoring_server.url}/docs", wait_until="networkidle")
            page.wait_for_selector(".opblock-summary-path[data-path='/score']", timeout=30_000)
            paths = page.eval_on_selector_all(".opblock-summary-path", "els => els.map(e => e.dataset.path)")
            authorize = page.query_selector(".btn.authorize")
            page.screenshot(path=str(shot), full_page=False)
        finally:
            browser.close()
    assert elsewhere == [] and errors == []
    assert {"/score", "/score_batch", "/explain", "/products"} <= set(paths)
    assert authorize is not None  # the X-API-Key security scheme
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_docs_page_and_its_script_need_no_key_and_come_from_this_server(scoring_server):
    page = httpx.get(f"{scoring_server.url}/docs", timeout=10)
    script = httpx.get(f"{scoring_server.url}/docs/swagger-init.js", timeout=10)
    assert (page.status_code, script.status_code) == (200, 200)
    assert page.headers["content-type"].startswith("text/html")
    assert "https://" not in page.text and "http://" not in page.text  # every asset is a path on this server
    assert "validatorUrl: null" in script.text  # the online validator badge would fetch from swagger.io
    version = httpx.get(f"{scoring_server.url}/docs.json", timeout=10).json()["info"]["version"]
    assert isinstance(version, str) and version not in ("", "None")  # OpenAPI requires one


def test_every_field_of_every_answer_says_what_it_means(scoring_server):
    document = httpx.get(f"{scoring_server.url}/docs.json", timeout=10).json()
    answers = ("ScoreResult", "BatchResult", "BatchItem", "Explanation", "ProductList", "ProductInfo", "RiskClass",
               "Reason", "ErrorAnswer", "ApplicantError")
    schemas = document["components"]["schemas"]
    undescribed = {name: [field for field, spec in schemas[name]["properties"].items() if not spec.get("description")]
                   for name in answers}
    assert undescribed == {name: [] for name in answers}
