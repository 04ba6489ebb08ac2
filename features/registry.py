"""The feature registry: what each feature means, its unit, direction of effect and reason text.

Entries are data declared beside the function that computes them (each feature module's
`SPECS`); the registry gathers them. It is an object, not a global list, so a data set can add
its own features (an insurer's custom measurements) without touching the built-in ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from chronorisk.data.declaration import FeatureSpec

# The definitions' version: raise it whenever a feature's computation changes, so a bundle trained
# with other definitions refuses to load instead of scoring new features with an old model.
FEATURE_DEFINITIONS_VERSION = 3  # 2: fixed windows and caps (issue 13); 3: history caps at one year



@dataclass
class FeatureRegistry:
    """Features by name, in the order they were registered."""

    specs: dict[str, FeatureSpec] = field(default_factory=dict)

    def add(self, spec: FeatureSpec) -> None:
        if spec.name in self.specs:
            raise ValueError(f"feature {spec.name} is already registered")
        self.specs[spec.name] = spec

    def extend(self, specs: Iterable[FeatureSpec]) -> FeatureRegistry:
        for spec in specs:
            self.add(spec)
        return self

    def __getitem__(self, name: str) -> FeatureSpec:
        try:
            return self.specs[name]
        except KeyError:
            raise KeyError(f"unknown feature {name!r}; the registry has {len(self.specs)} features") from None

    def __contains__(self, name: object) -> bool:
        return name in self.specs

    def __iter__(self) -> Iterator[FeatureSpec]:
        return iter(self.specs.values())

    def __len__(self) -> int:
        return len(self.specs)

    def names(self) -> list[str]:
        return list(self.specs)

    def directions(self) -> dict[str, int]:
        return {name: spec.direction for name, spec in self.specs.items()}

    def may_be_reason(self, name: str) -> bool:
        """Coverage and testing-pattern features describe the record, not the member: never a reason."""
        return self[name].kind == "measurement"


def default_registry() -> FeatureRegistry:
    """Every built-in feature, gathered from the modules that compute them."""
    from features.consultations import SPECS as consultation_specs
    from features.demographics import SPECS as demographic_specs
    from features.labs import SPECS as lab_specs
    from features.questionnaire import SPECS as questionnaire_specs
    from features.wearables import SPECS as wearable_specs

    registry = FeatureRegistry()
    for specs in (demographic_specs, questionnaire_specs, consultation_specs, lab_specs, wearable_specs):
        registry.extend(specs)
    return registry
