"""Checklists: spec (TOML) -> probes -> results; ticks, notes and fix runs in the state file; reports.

No textual here: the TUI draws what this package computes."""
