"""The README tells the truth: every file it names exists, and every make target it lists too."""

from __future__ import annotations

import re
from pathlib import Path

README = Path("README.md").read_text()


def test_every_path_the_readme_names_exists():
    named = set(re.findall(r"`((?:features|training|serving|chronorisk|experiments|tests|bench|scripts)/[^`\s]*)`",
                           README))
    module_names = set(re.findall(r"`([a-z_]+\.py)`", README))
    assert named, "the README names no paths: the tour is gone"
    missing = [p for p in named if not Path(p.split("<")[0].rstrip("/") or ".").exists()]
    assert not missing, missing
    every_py = {p.name for p in Path(".").rglob("*.py") if ".venv" not in p.parts}
    assert not (module_names - every_py), sorted(module_names - every_py)


def test_the_layout_tour_names_every_package_and_every_module():
    """A package or module added without a line in the tour fails here, so the tour stays the tree."""
    tour = README.split("## Layout", 1)[1].split("\n## ", 1)[0]
    packages = sorted({p.parent.as_posix() for p in Path(".").rglob("__init__.py")
                       if not {".venv", "tests"} & set(p.parts)})
    assert packages, "no packages found: run from the repository root"
    assert [p for p in packages if f"`{p}/`" not in tour] == []
    modules = {p.name for pkg in packages for p in Path(pkg).glob("*.py") if p.name != "__init__.py"}
    assert sorted(m for m in modules if f"`{m}`" not in tour) == []


def test_every_make_target_in_the_readme_exists():
    makefile = Path("Makefile").read_text()
    targets = set(re.findall(r"^([a-z-]+):", makefile, flags=re.M))
    listed = set(re.findall(r"`make ([a-z-]+)", README))
    assert listed and listed <= targets, sorted(listed - targets)


def test_the_readme_example_request_is_a_valid_score_body():
    import json

    from serving.schemas import Applicant

    body = json.loads(Path("experiments/examples/score_request.json").read_text())
    assert body["product"] == "diabetes"
    assert Applicant.model_validate(body["applicant"]).applicant_id
