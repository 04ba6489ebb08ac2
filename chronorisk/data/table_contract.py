"""How a raw table's rules are declared: columns (Col), row rules over several columns
(FrameCheck), the table (TableContract) and the rule vocabulary it reports (Rule, RULE_ORDER).

chronorisk/data/contracts.py declares the tables with these; chronorisk/data/quarantine.py
applies them; both import this module and neither imports the other for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from chronorisk.data.codes import CodeList
from chronorisk.data.units import LAB_UNITS, ColumnArray

# The order rules are listed in reasons, by_rule and the strict-mode error.
RULE_ORDER = ("null_key", "invalid_date", "invalid_number", "null_required", "future_date", "before_birth",
              "out_of_range", "unknown_code", "unknown_unit", "duplicate", "unknown_member")


@dataclass(frozen=True)
class Col:
    kind: str  # str | codes (";"-separated list) | date | float | int | bool
    key: bool = False  # a missing value is null_key (else null_required when not nullable)
    nullable: bool = True
    range: tuple[float, float, str] | None = None  # low, high (inclusive), unit
    codes: tuple[str, ...] = ()
    pattern: str | None = None  # one code of a codes list (RE2 syntax: Arrow matches it)
    code_list: CodeList | None = None  # and each code on this list (chronorisk.data.codes): the same unknown_code rule
    not_future: bool = False


@dataclass(frozen=True)
class FrameCheck:
    """A row rule that needs several columns; ok(columns) is True where the row passes.

    columns maps each column name to its canonical values (numpy for float and date columns, a
    pandas extension array else). ok works on those arrays, not on Series: it runs on every table,
    from one applicant's rows, where a pandas operation's fixed cost (~0.03 ms) is the whole cost,
    to millions of rows.
    """

    label: str
    column: str
    detail: str
    ok: Callable[[Mapping[str, ColumnArray]], np.ndarray]


@dataclass(frozen=True, eq=False)  # hashed by identity: contracts key the cached pandera schemas
class TableContract:
    name: str
    columns: dict[str, Col]
    key: tuple[str, ...]
    record_date: str | None = None  # checked against the member's birth date
    checks: tuple[FrameCheck, ...] = ()

    @property
    def member_scoped(self) -> bool:
        return self.name != "members"

    @cached_property
    def rules(self) -> dict[str, Rule]:
        """Every rule label the table can report, in RULE_ORDER: the vocabulary of by_rule and reasons."""
        return _catalogue(self)


@dataclass(frozen=True)
class Rule:
    rule: str
    column: str
    detail: str


def _catalogue(c: TableContract) -> dict[str, Rule]:
    rules: dict[str, Rule] = {}
    for name, col in c.columns.items():
        if col.key:
            rules[f"null_key:{name}"] = Rule("null_key", name, "value missing")
        elif not col.nullable:
            rules[f"null_required:{name}"] = Rule("null_required", name, "value missing")
        if col.kind == "date":
            rules[f"invalid_date:{name}"] = Rule("invalid_date", name, "not an ISO date")
        if col.kind in ("float", "int"):
            rules[f"invalid_number:{name}"] = Rule("invalid_number", name, f"not a {col.kind} number")
        if col.not_future:
            rules[f"future_date:{name}"] = Rule("future_date", name, "after the extract date")
        if col.range:
            rules[f"out_of_range:{name}"] = Rule("out_of_range", name, f"{name} {col.range[0]:g}-{col.range[1]:g} "
                                                 f"{col.range[2]}")
        if col.codes or col.pattern or col.kind == "bool":
            allowed = ", ".join(col.codes) if col.codes else \
                col.code_list.describe if col.code_list else col.pattern or "true/false"
            rules[f"unknown_code:{name}"] = Rule("unknown_code", name, f"allowed: {allowed}")
    if c.record_date:
        rules[f"before_birth:{c.record_date}"] = Rule("before_birth", c.record_date, "before the member's birth")
    for check in c.checks:
        old = rules.get(check.label)
        rules[check.label] = Rule("out_of_range", check.column, f"{old.detail} and {check.detail}" if old
                                  else check.detail)
    if c.name == "lab_results":
        rules.update({f"unknown_unit:{t}": Rule("unknown_unit", "unit", f"{t} accepts {' or '.join(units)}")
                      for t, units in LAB_UNITS.items()})
    rules["duplicate"] = Rule("duplicate", "+".join(c.key), "same key as an earlier row")
    if c.member_scoped:
        rules["unknown_member"] = Rule("unknown_member", "member_id", "not in the members table")
    return dict(sorted(rules.items(), key=lambda kv: RULE_ORDER.index(kv[1].rule)))
