"""Checklist results and the view the tree draws. Pure Python: no textual, no asyncpg.

tui.checklist computes these; widgets.checklist_tree draws them; nothing here talks to a database.
"""
from __future__ import annotations

from dataclasses import dataclass, field

PASS, FAIL, WARN, MANUAL, ERROR = "pass", "fail", "warn", "manual", "error"
STATUSES = (PASS, FAIL, WARN, MANUAL, ERROR)
PENDING = "pending"  # not verified yet (the tree only; never in a report)

# a mark for every status: readable without colour too
MARKS = {PASS: "✔", FAIL: "✘", WARN: "!", MANUAL: "?", ERROR: "⚠", PENDING: "…"}
COLOURS = {PASS: "green", FAIL: "red", WARN: "yellow", MANUAL: "cyan", ERROR: "magenta", PENDING: "grey50"}
SEVERITY_RANK = {"critical": 0, "high": 1, "normal": 2}


@dataclass(frozen=True)
class ItemResult:
    """What a probe found: one of five statuses and a one-line detail with evidence."""

    item_id: str
    status: str
    detail: str
    checked_at: float = 0.0  # time.time()
    duration_ms: float = 0.0

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}")


@dataclass(frozen=True)
class Tick:
    by: str
    at: str  # ISO 8601, UTC


@dataclass(frozen=True)
class Note:
    by: str
    at: str
    text: str


@dataclass(frozen=True)
class ItemView:
    """One item as the tree shows it."""

    id: str
    section: str
    title: str
    why: str
    severity: str
    kind: str  # probe kind, "manual" for a manual item
    status: str  # a STATUS or PENDING
    detail: str = ""
    tick: Tick | None = None
    notes: tuple[Note, ...] = ()
    fix_name: str | None = None
    fix_params: dict = field(default_factory=dict, hash=False, compare=True)
    fix_sql: str | None = None  # the exact SQL of the fix when the fixes package can say it

    @property
    def tickable(self) -> bool:
        """Space ticks an item a person must confirm (manual, or a probe that fell back to manual)."""
        return self.kind == "manual" or self.status == MANUAL or self.tick is not None

    @property
    def done(self) -> bool:
        return self.status == PASS


@dataclass(frozen=True)
class SectionView:
    id: str
    title: str
    items: tuple[ItemView, ...]

    @property
    def passed(self) -> int:
        return sum(1 for i in self.items if i.done)

    @property
    def counts(self) -> str:
        return f"{self.passed}/{len(self.items)}"

    @property
    def worst(self) -> str:
        order = (FAIL, ERROR, WARN, MANUAL, PENDING, PASS)
        present = {i.status for i in self.items}
        for s in order:
            if s in present:
                return s
        return PASS


@dataclass(frozen=True)
class ChecklistView:
    name: str
    title: str
    database: str  # redacted display of the target
    sections: tuple[SectionView, ...]
    checked_at: float | None = None
    running: bool = False
    error: str | None = None  # the whole run could not happen (connection lost...)

    def items(self):
        for s in self.sections:
            yield from s.items

    def item(self, item_id: str) -> ItemView | None:
        for i in self.items():
            if i.id == item_id:
                return i
        return None

    @property
    def total(self) -> int:
        return sum(len(s.items) for s in self.sections)

    @property
    def passed(self) -> int:
        return sum(s.passed for s in self.sections)

    def count(self, status: str) -> int:
        return sum(1 for i in self.items() if i.status == status)
