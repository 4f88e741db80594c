"""What a cancel or terminate did, from pg_stat_activity before and after (tui.model.signals)."""
from datetime import datetime, timedelta, timezone

import pytest

from tui.model.signals import cancel_refusal, outcome, settled
from tui.model.snapshot import Session, SessionState

pytestmark = pytest.mark.unit
T = datetime(2026, 1, 1, tzinfo=timezone.utc)


def st(pid, state, q=0, b=0):
    return SessionState(pid, state, T + timedelta(seconds=q), T - timedelta(seconds=b))


def sess(pid, state):
    return Session(pid=pid, database="d", user="u", application_name="a", client_addr=None, state=state,
                   wait_event_type=None, wait_event=None, blocked_by=(), xact_age_s=None, query_age_s=None,
                   state_age_s=None, query="SELECT 1")


def test_terminate_is_told_from_what_is_still_there():
    before = {1: st(1, "idle in transaction"), 2: st(2, "active")}
    assert outcome("terminate", [1, 2], before, {}) == ("terminated 1, 2", True)
    assert outcome("terminate", [1, 2], before, {1: before[1]}) == ("terminated 2; 1 is still idle in transaction", False)
    assert not settled("terminate", before, {1: before[1]}) and settled("terminate", before, {})
    reused = {1: st(1, "active", b=-5)}  # the pid came back as a new backend
    assert outcome("terminate", [1], {1: before[1]}, reused) == ("terminated 1", True)


def test_cancel_is_told_from_the_query_that_runs_next():
    before = {5: st(5, "active")}
    assert outcome("cancel", [5], before, {5: st(5, "active")}) == ("5 is still active", False)
    assert outcome("cancel", [5], before, {5: st(5, "idle")}) == ("cancelled 5 (now idle)", True)
    assert outcome("cancel", [5], before, {5: st(5, "active", q=3)}) == ("cancelled 5 (now active)", True)


def test_cancel_refuses_sessions_that_run_no_query():
    assert cancel_refusal([sess(1, "active")]) is None
    line = cancel_refusal([sess(7714, "idle"), sess(15499, "idle in transaction"), sess(3, "active")])
    assert line == ("cancel does nothing here: 7714 is idle, 15499 is idle in transaction, "
                    "no query runs to cancel; K terminates the session")
