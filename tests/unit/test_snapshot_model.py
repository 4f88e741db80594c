"""Snapshot dataclasses, their JSON shape, the text rendering and the pure helpers. No server."""
from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timezone

import pytest

from tui.db import sql
from tui.db.poller import build_connections, quote_ident_py
from tui.model import format as fmt
from tui.model.snapshot import (
    ConnectionsSnapshot, Session, SlowQueriesSnapshot, Snapshot, Statement, TablesSnapshot, TableStat,
)
from tui.model.snapshot_text import render_text

pytestmark = pytest.mark.unit
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def s(pid, blocked=(), state="active", query="SELECT 1"):
    return Session(pid, "db", "u", "app", None, state, None, None, tuple(blocked), 1.0, 1.0, 1.0, query)


def conns(*sessions):
    return ConnectionsSnapshot(len(sessions), 100, (("active", len(sessions)),), (), (), (), tuple(sessions))


def test_snapshots_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        s(1).pid = 2  # type: ignore[misc]


def test_blocking_chains_follow_who_blocks_whom():
    c = conns(s(10, state="idle in transaction"), s(11, blocked=[10]), s(12, blocked=[11]), s(13, blocked=[10]),
              s(14))
    assert c.blocking_chains() == [(0, 10), (1, 11), (2, 12), (1, 13)]
    assert conns(s(1), s(2)).blocking_chains() == []


def test_blocking_chains_survive_a_cycle():
    # a deadlock, momentarily: every session waits on another
    c = conns(s(1, blocked=[2]), s(2, blocked=[1]))
    assert sorted(p for _, p in c.blocking_chains()) == [1, 2]


def test_json_shape():
    snap = Snapshot(
        target="postgresql://u@h:5432/db", taken_at=T0, server=None,
        connections=conns(s(5, blocked=[4])),
        slow_queries=SlowQueriesSnapshot("pg_stat_statements", (Statement("9/db/u", "SELECT 1", 3, 3, 1.5, 4.5, 0.5,
                                                                       queryid="9"),)),
        tables=TablesSnapshot(100, (TableStat("s", "t", "s.t", 10, 5, 3, 2, 7, 1, 2, 0, None),)),
        host=None, host_message="host metrics unavailable for a remote server")
    d = json.loads(json.dumps(snap.to_dict()))
    assert set(d) >= {"server", "connections", "slow_queries", "tables", "host"}
    assert d["host"] is None and d["host_message"].startswith("host metrics unavailable")
    sess = d["connections"]["sessions"][0]
    assert set(sess) >= {"pid", "database", "user", "application_name", "client_addr", "state", "wait_event_type",
                         "wait_event", "blocked_by", "xact_age_s", "query_age_s", "query"}
    assert sess["blocked_by"] == [4]
    assert d["connections"]["max"] == 100 and d["connections"]["by_state"] == {"active": 1}
    assert d["slow_queries"]["source"] == "pg_stat_statements"
    assert d["slow_queries"]["statements"][0] == {
        "query": "SELECT 1", "calls": 3, "rows": 3, "mean_ms": 1.5, "total_ms": 4.5, "share": 0.5,
        "cache_hit_ratio": None, "database": None, "user": None, "queryid": "9"}
    t = d["tables"]["tables"][0]
    assert {k: t[k] for k in ("schema", "name", "total_bytes", "table_bytes", "index_bytes", "toast_bytes",
                              "est_rows", "seq_scan", "idx_scan", "dead_rows")} == {
        "schema": "s", "name": "t", "total_bytes": 10, "table_bytes": 5, "index_bytes": 3, "toast_bytes": 2,
        "est_rows": 7, "seq_scan": 1, "idx_scan": 2, "dead_rows": 0}


def test_text_rendering_strips_nothing_it_should_keep_and_names_remote_host():
    snap = Snapshot("t", T0, None, conns(s(7, query="SELECT 'ü'")), None, None, None,
                    host_message="host metrics unavailable for a remote server")
    out = render_text(snap)
    assert "SELECT 'ü'" in out and "host: host metrics unavailable for a remote server" in out


def test_build_connections_aggregates_and_hides():
    counts = [
        {"is_state": True, "is_database": False, "is_application": False, "is_user": False, "state": "idle",
         "database": "", "application": "", "user": "", "n": 3},
        {"is_state": True, "is_database": False, "is_application": False, "is_user": False, "state": "",
         "database": "", "application": "", "user": "", "n": 1},
        {"is_state": False, "is_database": True, "is_application": False, "is_user": False, "state": "",
         "database": "app", "application": "", "user": "", "n": 4},
        {"is_state": False, "is_database": False, "is_application": False, "is_user": False, "state": "",
         "database": "", "application": "", "user": "", "n": 4},
    ]
    base = {"database": "app", "user": "bob", "application_name": "web\x1b[31m", "client_addr": None,
            "state": None, "wait_event_type": None, "wait_event": None, "blocked_by": [], "xact_age_s": None,
            "query_age_s": None, "state_age_s": None, "total": 9}
    rows = [dict(base, pid=1, query="<insufficient privilege>"), dict(base, pid=2, query="SELECT\n1\x07")]
    c = build_connections(counts, rows, 100, True, "Mon Role")
    assert c.total == 4 and dict(c.by_state) == {"idle": 3, "(hidden)": 1} and dict(c.by_database) == {"app": 4}
    assert c.sessions[0].query == '<hidden: GRANT pg_read_all_stats TO "Mon Role">' and c.sessions[0].query_hidden
    assert c.sessions[1].query == "SELECT 1\ufffd"  # newline folded, control character replaced
    assert c.sessions[1].application_name == "web"  # ANSI stripped
    assert c.sessions_omitted == 7


@pytest.mark.parametrize("name,quoted", [("users", "users"), ("Users", '"Users"'), ('a"b', '"a""b"'),
                                         ("big table ü", '"big table ü"'), ("1abc", '"1abc"')])
def test_quote_ident_py(name, quoted):
    assert quote_ident_py(name) == quoted


def test_pg_stat_statements_columns_by_version():
    assert "p.total_time AS total_ms" in sql.get("statements", 120017)
    assert "p.mean_time AS mean_ms" in sql.get("statements", 120017)
    for v in (130000, 150004, 170000):
        assert "p.total_exec_time AS total_ms" in sql.get("statements", v)


def test_own_statements_carry_the_marker():
    for name in ("server_info", "database_size", "activity", "activity_all", "statements",
                 "long_running", "tables", "pgss_location", "data_directory"):
        assert sql.get(name, 150000).startswith("-- pgpreflight"), name


def test_session_queries_exclude_own_sessions_and_limit():
    for name in ("activity", "activity_all", "long_running"):
        q = sql.get(name, 150000)
        assert "NOT LIKE 'pgpreflight%'" in q and "pg_backend_pid()" in q, name
    assert "LIMIT $1" in sql.get("activity", 150000) and "LIMIT 50" in sql.get("tables", 150000)
    assert "IS DISTINCT FROM 'idle'" in sql.get("activity") and "'idle'" not in sql.get("activity_all")
    # no parameter guards an expensive expression: the only parameter is the LIMIT
    for name in ("server_info", "statements", "tables", "long_running"):
        assert "$1" not in sql.get(name, 150000), name


def test_format_helpers():
    assert fmt.sparkline([0, 50, 100], 100, 10) == "▁▅█"
    assert fmt.sparkline([200], 100) == "█"
    assert fmt.sparkline([], 100) == ""
    assert fmt.count(1234) == "1,234" and fmt.count(2_400_000) == "2.4M" and fmt.count(600_000) == "600k"
    assert fmt.ms(0.4234) == "0.42" and fmt.ms(4584.0) == "4,584" and fmt.ms(1_841_622.0) == "30m41s"


def test_audit_log_lines(tmp_path):
    from tui import audit

    audit.record(tmp_path / "state", "postgresql://u@h:5432/db", "cancel backend", ["SELECT pg_cancel_backend(7)"],
                 "ok")
    audit.record(tmp_path / "state", "postgresql://u@h:5432/db", "terminate backend",
                 ["SELECT pg_terminate_backend(8)"], "refused: read-only")
    lines = (tmp_path / "state" / "audit.jsonl").read_text().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert list(first) == ["time", "os_user", "target", "action", "statements", "outcome"]
    assert first["statements"] == ["SELECT pg_cancel_backend(7)"] and first["os_user"]
    assert ((tmp_path / "state" / "audit.jsonl").stat().st_mode & 0o777) == 0o600

