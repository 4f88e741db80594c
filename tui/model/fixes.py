"""What a fix shows before, during and after it runs. Pure Python: no textual, no asyncpg.

tui.fixes builds these; widgets.fix_plan and widgets.fix_progress draw them; the CLI prints them.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Precondition:
    """One thing checked before a fix may run: privileges, server version, disk space, a primary.

    ``warn``: a warning, not a guard: when not ok it is drawn as ``[!!]`` and never blocks the run (e.g.
    sessions whose locks conflict with the fix's ACCESS EXCLUSIVE: the fix retries, they may finish).
    ``holders``: for the lock warning, the conflicting sessions as dicts (pid, state, age_s, application,
    query, user, granted), the root holder first."""

    name: str
    ok: bool
    detail: str = ""
    warn: bool = False
    holders: tuple = field(default=(), hash=False, compare=True)

    @property
    def blocks(self) -> bool:
        return not self.ok and not self.warn

    def line(self) -> str:
        mark = "ok" if self.ok else ("!!" if self.warn else "NO")
        return f"[{mark}] {self.name}" + (f": {self.detail}" if self.detail else "")


@dataclass(frozen=True)
class Plan:
    """Exactly what a fix will do, shown before anything runs."""

    fix: str
    title: str
    target: str  # the redacted display form of the target: never a password
    item_id: str | None = None
    statements: tuple[str, ...] = ()  # the exact SQL, in order
    commands: tuple[str, ...] = ()  # shell commands (pg_dump, pg_restore), password-free
    locks: tuple[str, ...] = ()  # which locks, on what, and what they block
    estimate: str = ""  # how long it may take, and from what
    estimate_s: float | None = None
    preconditions: tuple[Precondition, ...] = ()
    notes: tuple[str, ...] = ()  # what the operator should know (restart needed, nothing to do, ...)
    writes: bool = True  # False: changes nothing in the database (connection test)
    nothing_to_do: bool = False
    confirmations: int = 1  # terminate: 2

    @property
    def blocked(self) -> bool:
        """A failed guard stops the run; a warning (``Precondition.warn``) never does."""
        return any(p.blocks for p in self.preconditions)

    @property
    def blockers(self) -> tuple[Precondition, ...]:
        return tuple(p for p in self.preconditions if p.blocks)

    @property
    def warnings(self) -> tuple[Precondition, ...]:
        return tuple(p for p in self.preconditions if p.warn and not p.ok)

    def same_actions(self, other: "Plan | None") -> bool:
        """The same statements and commands, in the same order: what the operator confirmed is what runs."""
        return other is not None and (self.statements, self.commands) == (other.statements, other.commands)

    def text(self) -> str:
        """The plan as plain text (headless --dry-run, the details pane)."""
        out = [f"Fix: {self.title}  ({self.fix}{' for ' + self.item_id if self.item_id else ''})",
               f"Target: {self.target}"]
        if self.nothing_to_do:
            out.append("Nothing to do.")
        if self.statements:
            out.append("SQL, in order:")
            out += ["  " + line for s in self.statements for line in s.splitlines()]
        if self.commands:
            out.append("Commands:")
            out += [f"  {c}" for c in self.commands]
        if self.locks:
            out.append("Locks:")
            out += [f"  {x}" for x in self.locks]
        if self.estimate:
            out.append(f"Estimate: {self.estimate}")
        if self.preconditions:
            out.append("Preconditions:")
            out += [f"  {p.line()}" for p in self.preconditions]
        for n in self.notes:
            out.append(f"Note: {n}")
        return "\n".join(out) + "\n"


@dataclass(frozen=True)
class Progress:
    """One progress report of a running fix."""

    phase: str
    fraction: float | None = None  # 0..1, None when unknown
    detail: str = ""  # e.g. "blocks 120/400 · tuples 10,000/50,000"
    step: int = 1  # which of `steps` (index 2 of 3)
    steps: int = 1
    blocks_done: int | None = None
    blocks_total: int | None = None
    tuples_done: int | None = None
    tuples_total: int | None = None

    def line(self) -> str:
        pct = f" {self.fraction * 100:.0f}%" if self.fraction is not None else ""
        step = f"[{self.step}/{self.steps}] " if self.steps > 1 else ""
        return f"{step}{self.phase}{pct}" + (f" · {self.detail}" if self.detail else "")


@dataclass(frozen=True)
class Choice:
    """A decision a failed fix leaves to the operator (drop the INVALID index, drop or keep NOT VALID)."""

    kind: str  # "invalid_index" | "check_violation"
    prompt: str
    options: tuple[tuple[str, str], ...]  # (value, label); the first is the default
    fix: str = ""  # the follow-up fix that carries out a non-"keep" option
    params: dict = field(default_factory=dict, hash=False, compare=True)


@dataclass(frozen=True)
class FixResult:
    ok: bool
    summary: str
    figures: dict = field(default_factory=dict, hash=False, compare=True)
    left_behind: tuple[str, ...] = ()  # what is left in the database, said exactly ("nothing" when empty)
    statements: tuple[str, ...] = ()  # what was actually sent to the server
    cancelled: bool = False
    choice: Choice | None = None  # a follow-up decision (UI) that has not been taken yet
    details: tuple[str, ...] = ()  # more lines: sample violating rows, pg_restore warnings, ...
    # the root holder of the lock the fix could not take within its budget: pid, state, age_s, application,
    # query, user, and action ("cancel" for an active query, "terminate" for idle in transaction)
    blocker: dict | None = field(default=None, hash=False, compare=True)

    def blocker_call(self) -> str | None:
        """The exact call that ends the root holder (the operator runs it; pgpreflight never does on its own)."""
        b = self.blocker
        if not b:
            return None
        fn = "pg_cancel_backend" if b.get("action") == "cancel" else "pg_terminate_backend"
        return f"SELECT {fn}({int(b['pid'])});"

    def text(self) -> str:
        out = [("OK: " if self.ok else ("CANCELLED: " if self.cancelled else "FAILED: ")) + self.summary]
        out += [f"  {d}" for d in self.details]
        if self.blocker:
            out.append("  root holder: " + blocker_line(self.blocker))
            out.append(f"  to end it ({'cancels its query' if self.blocker.get('action') == 'cancel' else 'ends its session; its transaction rolls back'}): "
                       f"{self.blocker_call()}")
        if self.figures:
            from tui.model.format import figure

            out.append("  figures: " + ", ".join(f"{k} {figure(v)}" for k, v in self.figures.items()
                                                 if not isinstance(v, (dict, list))))
        out.append("  left behind: " + ("; ".join(self.left_behind) if self.left_behind else "nothing"))
        return "\n".join(out) + "\n"


def _short(text: str, n: int) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= n else text[: n - 1] + "…"


def blocker_line(b: dict, query_chars: int = 80) -> str:
    """pid 123 idle in transaction for 12 s, app "billing", user app: UPDATE credit_balances …"""
    age = b.get("age_s")
    age_txt = f" for {age:.0f} s" if isinstance(age, (int, float)) else ""
    app = b.get("application") or "no application_name"
    user = f", user {b['user']}" if b.get("user") else ""
    return (f"pid {b['pid']} {b.get('state') or '(state hidden)'}{age_txt}, application {app}{user}: "
            f"{_short(b.get('query') or '(no query)', query_chars)}")


# ------------------------------------------------------------------ preflight in one go (tui.fixes.preflight)
@dataclass(frozen=True)
class Step:
    """One fix of the combined plan."""

    n: int  # 1-based, in run order
    item_id: str
    item_title: str
    fix_name: str
    params: dict = field(hash=False, compare=True)
    plan: Plan | None = None
    error: str = ""  # the plan could not be made (one line)
    objects: tuple[str, ...] = ()  # what it locks or changes: "table public.users", "file server/db.ts"
    depends_on: tuple[int, ...] = ()  # steps that must have succeeded first

    @property
    def runnable(self) -> bool:
        return self.plan is not None and not self.plan.blocked and not self.error

    @property
    def nothing_to_do(self) -> bool:
        return self.plan is not None and self.plan.nothing_to_do

    @property
    def status_line(self) -> str:
        if self.error:
            return f"cannot plan: {self.error}"
        if self.plan is None:
            return "no plan"
        if self.plan.blocked:
            return "cannot run: " + "; ".join(f"{p.name}: {p.detail}" for p in self.plan.blockers)
        if self.plan.nothing_to_do:
            return "nothing to do"
        return self.plan.estimate or "ready"


@dataclass(frozen=True)
class CombinedPlan:
    checklist: str
    target: str
    steps: tuple[Step, ...]
    without_fix: tuple[tuple[str, str], ...] = ()  # (item id, why) of failing items no step covers

    @property
    def runnable(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.runnable)

    def step(self, n: int) -> Step:
        return next(s for s in self.steps if s.n == n)

    def text(self) -> str:
        out = [f"Preflight: {len(self.steps)} step(s) for the failing items of {self.checklist} on {self.target}"]
        for s in self.steps:
            after = f" (after step {', '.join(map(str, s.depends_on))})" if s.depends_on else ""
            out.append("")
            out.append(f"Step {s.n}/{len(self.steps)}: {s.item_id} — {s.item_title}{after}")
            if not s.runnable or s.nothing_to_do:
                out.append(f"  {s.status_line}")
            if s.plan is not None:
                out += ["  " + line for line in s.plan.text().rstrip("\n").splitlines()]
        if self.without_fix:
            out.append("")
            out.append("Failing items without an automatic fix (a person acts, then verifies or ticks):")
            out += [f"  {item_id}: {why}" for item_id, why in self.without_fix]
        return "\n".join(out) + "\n"


@dataclass
class StepOutcome:
    step: Step
    status: str  # "ok" | "failed" | "cancelled" | "skipped" | "refused" | "left out" | "nothing to do"
    result: FixResult | None = None
    reason: str = ""

    def line(self) -> str:
        head = f"step {self.step.n} {self.step.item_id} ({self.step.fix_name}): {self.status}"
        if self.result is not None:
            return f"{head}: {self.result.summary}"
        return head + (f": {self.reason}" if self.reason else "")
