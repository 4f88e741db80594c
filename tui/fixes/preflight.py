"""Preflight in one go: one combined plan of every failing item's fix, run step by step. No textual here.

``plan_all`` checks the database and plans the fix of every failing item that has one, in a sensible
order: pg_stat_statements and slow-query logging first (they cost nothing and make the rest visible),
then indexes (CONCURRENTLY), constraints, file fixes, the daily-backup setup, the backup test, and the
connection test last (it measures the server as the other steps left it). ``run_all`` runs the chosen
steps one by one through :func:`tui.fixes.base.run_fix` — every guard, lock, audit line and record of a
single fix applies to each step — and a failed step does not stop the steps that do not depend on it
(a step depends on an earlier one on the same object, e.g. the same table). Everything is verified again
at the end. The TUI (``F`` in the checklist) and ``pgpreflight fix --all`` both use this.
"""
from __future__ import annotations

import asyncio
from typing import Awaitable, Callable

from tui.model.fixes import CombinedPlan, FixResult, Plan, Step, StepOutcome

#: the order of the steps, by fix name; a fix not named here comes after the file fixes
ORDER = {
    "enable_pg_stat_statements": 0,
    "slow_query_log": 1,
    "create_index": 2,
    "add_check_constraint": 3,
    "edit_file": 4,
    "backup_schedule": 6,
    "backup_test": 7,
    "connection_test": 8,
}
OTHER_ORDER = 5
FAILING = ("fail", "error")


def failing_items(checklist, results: dict) -> list:
    """Items that fail (or whose probe errs), in checklist order. Roll-ups (kind "items") are left out:
    they pass when the items they name pass."""
    out = []
    for item in checklist.items():
        r = results.get(item.id)
        if r is None or r.status not in FAILING or item.probe.kind == "items":
            continue
        out.append(item)
    return out


def order_steps(raw: list[tuple[object, str, dict]]) -> list[tuple[object, str, dict]]:
    """(item, fix name, params) sorted by ORDER, keeping checklist order within a kind; the same fix with
    the same params (two items fixed by one run) once."""
    seen: set[tuple[str, str]] = set()
    unique = []
    for item, name, params in raw:
        key = (name, repr(sorted(params.items())))
        if key in seen:
            continue
        seen.add(key)
        unique.append((item, name, params))
    return sorted(unique, key=lambda t: ORDER.get(t[1], OTHER_ORDER))


async def plan_all(config, checklist, results: dict, *, options: dict | None = None,
                   planner: Callable[..., Awaitable[Plan]] | None = None) -> CombinedPlan:
    """The combined plan of the failing items of ``checklist`` (``results``: item id -> ItemResult)."""
    from tui.fixes.base import FixError, FixRefused, get_fix_class, params_for_item, plan_fix

    planner = planner or plan_fix
    raw, without = [], []
    for item in failing_items(checklist, results):
        if item.fix is None:
            without.append((item.id, "manual" if item.manual else (results[item.id].detail or "no fix")))
            continue
        try:
            name, params = params_for_item(item)
            get_fix_class(name)
        except FixError as e:
            without.append((item.id, str(e)))
            continue
        raw.append((item, name, params))
    steps: list[Step] = []
    owner: dict[str, int] = {}
    for n, (item, name, params) in enumerate(order_steps(raw), start=1):
        plan, error, objects = None, "", ()
        try:
            fix = get_fix_class(name)(params)
            objects = tuple(_static_objects(fix))
            plan = await planner(config, name, params, item_id=item.id, options=dict(options or {}))
        except (FixError, FixRefused) as e:
            error = getattr(e, "reason", None) or str(e)
        except Exception as e:  # a server error while planning one step: that step says so, the rest go on
            error = str(e).splitlines()[0] if str(e) else type(e).__name__
        deps = tuple(sorted({owner[o] for o in objects if o in owner}))
        for o in objects:
            owner[o] = n
        steps.append(Step(n, item.id, item.title, name, dict(params), plan, error, objects, deps))
    return CombinedPlan(checklist.name, config.target.display, tuple(steps), tuple(without))


def _static_objects(fix) -> list[str]:
    """The objects a fix names from its params alone (Fix.objects may want a context; most do not)."""
    try:
        return list(fix.objects(None))
    except Exception:
        return [fix.name]


Runner = Callable[..., Awaitable[FixResult]]


async def run_step(config, step: Step, *, confirmations: int, runner: Runner | None = None,
                   progress_cb=None, cancel_event: asyncio.Event | None = None,
                   options: dict | None = None) -> StepOutcome:
    """Run one step through run_fix (every guard applies). Refusals become an outcome, not an exception."""
    from tui.fixes.base import FixError, FixRefused, run_fix

    runner = runner or run_fix
    try:
        kw = dict(item_id=step.item_id, confirmations=confirmations, progress_cb=progress_cb,
                  cancel_event=cancel_event, options=dict(options or {}))
        if step.plan is not None:  # what runs is what was confirmed: run_fix refuses a changed plan
            kw["confirmed_plan"] = step.plan
        res = await runner(config, step.fix_name, dict(step.params), **kw)
    except FixRefused as e:
        return StepOutcome(step, "refused", None, e.reason)
    except FixError as e:
        return StepOutcome(step, "refused", None, str(e))
    status = "ok" if res.ok else ("cancelled" if res.cancelled else "failed")
    return StepOutcome(step, status, res)


async def run_all(config, combined: CombinedPlan, *, chosen: set[int] | None = None,
                  confirm_more: Callable[[Step], Awaitable[bool]] | None = None,
                  on_start: Callable[[Step], None] | None = None,
                  on_outcome: Callable[[StepOutcome], Awaitable[StepOutcome] | None] | None = None,
                  progress_cb=None, cancel_event: asyncio.Event | None = None, options: dict | None = None,
                  runner: Runner | None = None) -> list[StepOutcome]:
    """Run the chosen steps (all runnable ones when ``chosen`` is None) in order. The operator confirmed
    the combined plan once: that is one confirmation of each step; a step whose plan needs more asks
    ``confirm_more`` (no callback: it is left out). A step whose dependency did not succeed is skipped.
    ``on_outcome`` may replace an outcome (the TUI ends a blocker and retries the step there)."""
    outcomes: list[StepOutcome] = []
    good: set[int] = set()
    for step in combined.steps:
        if cancel_event is not None and cancel_event.is_set():
            outcomes.append(StepOutcome(step, "cancelled", None, "not started: the run was cancelled"))
            continue
        if chosen is not None and step.n not in chosen:
            outcomes.append(StepOutcome(step, "left out", None, "left out by the operator"))
            continue
        if not step.runnable:
            outcomes.append(StepOutcome(step, "skipped", None, step.status_line))
            continue
        missing = [d for d in step.depends_on if d not in good]
        if missing:
            outcomes.append(StepOutcome(step, "skipped", None,
                                        f"step {', '.join(map(str, missing))} did not succeed and this step "
                                        f"works on the same object"))
            continue
        confirmations = 1
        if step.plan.confirmations > 1:
            if confirm_more is None or not await confirm_more(step):
                outcomes.append(StepOutcome(step, "left out", None, "its second confirmation was not given"))
                continue
            confirmations = step.plan.confirmations
        if on_start is not None:
            on_start(step)
        outcome = await run_step(config, step, confirmations=confirmations, runner=runner,
                                 progress_cb=progress_cb, cancel_event=cancel_event, options=options)
        if on_outcome is not None:
            replaced = on_outcome(outcome)
            if asyncio.iscoroutine(replaced):
                replaced = await replaced
            if isinstance(replaced, StepOutcome):
                outcome = replaced
        if outcome.status == "ok":
            good.add(step.n)
        outcomes.append(outcome)
    return outcomes


def summary(outcomes: list[StepOutcome]) -> str:
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    return ", ".join(f"{n} {s}" for s, n in counts.items()) or "no steps"
