"""Guarded fixes for checklist items. No textual here.

Public API (see tui.fixes.base for the guards):

- ``plan_fix(config, fix_name, params, item_id=, options=) -> Plan``: changes nothing.
- ``run_fix(config, fix_name, params, item_id=, confirmations=, progress_cb=, cancel_event=, options=,
  confirmed_plan=) -> FixResult``: raises ``FixRefused`` when a guard says no (read-only, not confirmed, a
  precondition, the object busy), ``PlanChanged`` (a FixRefused) when the plan is not the confirmed one.
- ``run_followup(config, choice, option)``: the operator's answer to ``FixResult.choice``.
- ``REGISTRY``: fix name -> Fix class.

``options`` (not from the checklist; from the operator): ``on_invalid`` ("drop" | "ask"),
``on_violation`` ("drop" | "keep" | "ask"), ``lock_timeout_ms`` (the cap of one lock try), ``lock_budget_s``
(the total time ACCESS EXCLUSIVE lock retries may take; 0: one try under lock_timeout_ms), ``restore_dsn``,
``backup_dir``.
"""
from tui.fixes.base import (REGISTRY, Fix, FixCancelled, FixContext, FixError, FixRefused, PlanChanged,
                            get_fix_class, params_for_item, plan_fix, run_fix, run_followup)
from tui.fixes import backup, connections, constraints, files, indexes, settings  # noqa: F401  (register the fixes)



def describe(name: str, params: dict) -> str | None:
    """The SQL of a fix without a database (handed to tui.checklist.runner.build_view as ``describe_fix``);
    None when unknown."""
    try:
        return get_fix_class(name)(params).describe()
    except FixError:
        return None


def label(name: str, params: dict) -> str | None:
    """A menu line for a fix ("create missing indexes on extraction_analytics"); None when unknown."""
    try:
        return get_fix_class(name)(params).label()
    except FixError:
        return None


__all__ = ["describe", "label", "REGISTRY", "Fix", "FixCancelled", "FixContext", "FixError", "FixRefused", "PlanChanged",
           "get_fix_class",
           "params_for_item", "plan_fix", "run_fix", "run_followup"]
