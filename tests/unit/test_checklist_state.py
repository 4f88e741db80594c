"""Checklist state: per database identity, atomic writes, corrupt files moved aside, no secrets."""
from __future__ import annotations

import json
import os
import threading

import pytest

from tui.checklist import state as st_mod
from tui.checklist.state import (DatabaseIdentity, load_state, record_fix_run, save_state, state_path,
                                 update_state)
from tui.model.checklist import ItemResult

pytestmark = pytest.mark.unit

ID = DatabaseIdentity("7301234567890123456", "metaextract")


def test_empty_when_missing(state_dir):
    st = load_state(state_dir, ID)
    assert st.ticks == {} and st.fix_runs == {} and st.warnings == []


def test_round_trip_ticks_notes_results_fix_runs(state_dir):
    st = load_state(state_dir, ID)
    st.set_tick("backups.separate_storage", by="alice", at="2026-01-05T10:00:00+00:00")
    st.add_note("pool.max", "  PR #123   raises it to 20 ", by="bob")
    st.set_results([ItemResult("pool.max", "fail", "max: 10 in server/db.ts line 28, needs ≥ 20", 1_700_000_000.0)])
    path = save_state(state_dir, st)
    assert path == state_dir / "checklist" / "7301234567890123456-metaextract.json"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    again = load_state(state_dir, ID)
    assert again.tick("backups.separate_storage").by == "alice"
    assert again.notes_for("pool.max")[0].text == "PR #123 raises it to 20"
    assert again.results["pool.max"]["status"] == "fail"
    again.set_tick("backups.separate_storage", False)
    save_state(state_dir, again)
    assert load_state(state_dir, ID).tick("backups.separate_storage") is None


def test_identity_separates_databases(state_dir):
    record_fix_run(state_dir, ID, "backup_test", True, {"tables": 6})
    other = DatabaseIdentity(ID.system_identifier, "other/db")
    assert load_state(state_dir, other).fix_runs == {}
    assert "/" not in state_path(state_dir, other).name


def test_record_fix_run_shape(state_dir):
    record_fix_run(state_dir, ID, "connection_test", False, {"connections": 25, "failures": 3},
                   item_id="pool.concurrency", detail="3 of 25 failed: too many connections")
    run = load_state(state_dir, ID).fix_run("connection_test")
    assert run["ok"] is False and run["figures"] == {"connections": 25, "failures": 3}
    assert run["item"] == "pool.concurrency" and run["by"] and run["at"].endswith("+00:00")


def test_corrupt_file_is_moved_aside_with_a_warning(state_dir):
    path = state_path(state_dir, ID)
    path.parent.mkdir(parents=True)
    path.write_text("{ not json")
    st = load_state(state_dir, ID)
    assert st.ticks == {} and len(st.warnings) == 1 and "corrupt" in st.warnings[0]
    assert not path.exists()
    aside = [p for p in path.parent.iterdir() if ".corrupt-" in p.name]
    assert len(aside) == 1 and aside[0].read_text() == "{ not json"
    # a wrongly shaped file too
    path.write_text(json.dumps({"version": 1, "ticks": []}))
    st = load_state(state_dir, ID)
    assert "'ticks' is not an object" in st.warnings[0]
    assert len([p for p in path.parent.iterdir() if ".corrupt-" in p.name]) == 2


def test_write_is_atomic_when_interrupted(state_dir, monkeypatch):
    st = load_state(state_dir, ID)
    st.set_tick("a", by="alice")
    save_state(state_dir, st)
    before = state_path(state_dir, ID).read_text()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(st_mod.os, "replace", boom)
    st.set_tick("b", by="alice")
    with pytest.raises(OSError):
        save_state(state_dir, st)
    monkeypatch.undo()
    assert state_path(state_dir, ID).read_text() == before
    assert [p.name for p in state_path(state_dir, ID).parent.iterdir() if p.name.endswith(".tmp")] == []


def test_concurrent_updates_are_not_lost(state_dir):
    def worker(n):
        for i in range(10):
            update_state(state_dir, ID, lambda s, n=n, i=i: s.set_tick(f"item{n}.{i}", by="t"))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(load_state(state_dir, ID).ticks) == 40


def test_no_secrets_in_state(state_dir):
    st = load_state(state_dir, ID)
    st.set_fix_run("backup_test", True, {"dump_bytes": 10})
    text = save_state(state_dir, st).read_text()
    assert "password" not in text.lower() and "postgresql://" not in text


def test_peaks_keep_the_highest_in_the_window_and_survive_saves(state_dir):
    st = load_state(state_dir, ID)
    st.observe_peak("connections", 10, at="2026-01-05T10:00:00+00:00")
    st.observe_peak("connections", 4, at="2026-01-05T11:00:00+00:00")
    assert st.peaks["connections"] == {"value": 10, "at": "2026-01-05T10:00:00+00:00"}
    st.observe_peak("connections", 3, at="2026-01-20T11:00:00+00:00")  # the old peak is out of the window
    assert st.peaks["connections"]["value"] == 3
    save_state(state_dir, st)
    other = load_state(state_dir, ID)
    other.merge_peaks({"connections": {"value": 7, "at": "2026-01-20T12:00:00+00:00"}})
    assert other.peaks["connections"]["value"] == 7
