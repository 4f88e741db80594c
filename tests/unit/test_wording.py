"""Issue 13's "honest words": figures read as a person reads them, times whole, errors named."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.unit


def test_figures_are_never_python_reprs():
    from tui.model.fixes import FixResult
    from tui.model.format import figure

    assert [figure(v) for v in (True, False, None, 1.5, 3, "x")] == ["yes", "no", "none", "1.5", "3", "x"]
    text = FixResult(True, "ok", figures={"scratch_dropped": True, "previous_auto": None}).text()
    assert "scratch_dropped yes" in text and "previous_auto none" in text
    assert "True" not in text and "None" not in text


def test_times_are_whole():
    from tui.model.format import when

    assert when("2026-12-01T21:30:59+00:00") == "2026-12-01 21:30 UTC"
    assert when("2026-12-01T22:30:00+01:00") == "2026-12-01 21:30 UTC"
    assert when(None) == "?" and when("not a time") == "not a time"


def test_connection_errors_say_what_happened():
    from tui.db.connect import describe_error

    assert describe_error(ConnectionRefusedError(), 5).startswith("connection refused")
    assert "ConnectionError" not in describe_error(ConnectionError(), 5)
    assert describe_error(ConnectionError("Network is unreachable"), 5) == "connection failed: Network is unreachable"
    assert describe_error(ConnectionResetError(), 5).startswith("the connection was reset")


def test_concurrency_item_and_its_fix_agree():
    from tui.checklist.spec import load_checklist
    from tui.fixes import label

    item = load_checklist("images-mvp").item("pool.concurrency")
    n = item.fix.params["connections"]
    assert f"{n} concurrent connections" in item.title
    assert label(item.fix.name, dict(item.fix.params)) == f"test with {n} concurrent connections"


def test_passing_empty_queries_read_as_a_pass():
    from tui.checklist.spec import load_checklist

    general = load_checklist("general")
    assert general.item("health.unindexed_foreign_keys").probe.params["pass_detail"] == \
        "every foreign key has an index"


def test_no_tui_key_in_headless_words():
    """A probe's detail is printed by check and report too: it names the command, not a TUI key."""
    import re
    from pathlib import Path

    probes = Path(__file__).resolve().parents[2] / "tui" / "checklist" / "probes.py"
    assert not re.search(r"fix \(f\)", probes.read_text())
