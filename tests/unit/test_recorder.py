"""The flight recorder (tui.recorder) and its reader (tui.replay) without a server: the codec on every
event type, query texts (pglast and the fallback), compaction, permissions, retention and the cap,
the daily roll, the Replayer's stepping and seeking, and ``replay --format json``."""
from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sqlite3
import typing
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tui import recorder as R
from tui.cli import main
from tui.config import Config, UsageError, resolve_target
from tui.model import events as E
from tui.model.snapshot import (
    HIDDEN_QUERY, ConnectionsSnapshot, ConnectionState, DiskUsage, HostSnapshot, ServerInfo, Session,
    SlowQueriesSnapshot, Statement, TablesSnapshot, TableStat,
)
from tui.recorder import Recorder, RecordingError
from tui.replay import Recording, Replayer, parse_time

pytestmark = pytest.mark.unit
T0 = datetime(2026, 5, 1, 23, 50, tzinfo=timezone.utc)
EMAIL = "carol.customer@example.com"
KEY = "7301234567890-metaextract"


# -- canned events: one of every type, every field set ----------------------------------------------

def server(i: int = 0) -> ServerInfo:
    return ServerInfo("15.4", 150004, T0 - timedelta(days=3), T0 + timedelta(seconds=2 * i), "metaextract",
                      12 + i % 3, 100, 3, 10_000 + 7 * i, 500_000 + 90 * i, 1_200 + i, False, 1000.5 + 2 * i,
                      database_bytes=50_000_000 + i, database_growth_bps=12.5, tps=3.25 + i % 2,
                      cache_hit_ratio=0.99875, database_bytes_estimated=True)


def session(pid: int, query: str, **kw) -> Session:
    d = dict(database="metaextract", user="app", application_name="images-mvp-api", client_addr="10.0.0.7",
             state="active", wait_event_type="Lock", wait_event="relation", blocked_by=(pid + 1,),
             xact_age_s=12.125, query_age_s=3.5, state_age_s=0.25, query=query, backend_age_s=600.0)
    d.update(kw)
    return Session(pid, **d)


def connections(i: int = 0) -> ConnectionsSnapshot:
    own = session(99, "ALTER TABLE t ADD CONSTRAINT c CHECK (x > 0)", own=True, application_name="pgpreflight/fix")
    return ConnectionsSnapshot(
        3, 100, (("active", 2), ("idle in transaction", 1)), (("metaextract", 3),), (("images-mvp-api", 3),),
        (("app", 3),),
        (session(101, f"SELECT * FROM users WHERE email = '{EMAIL}' AND id = {40 + i}"),
         session(102, HIDDEN_QUERY.format(role="watcher"), query_hidden=True, state=None)),
        sessions_omitted=1, includes_idle=True, polled_at=1000.75 + 2 * i, own_blockers=(own,))


def slow(i: int = 0) -> SlowQueriesSnapshot:
    st = Statement("q1:app:db", f"SELECT * FROM trial_usages WHERE session_id = $1 /* {i} */", 10 + i, 20, 1.5, 15.0,
                   share=0.25, cache_hit_ratio=0.5, database="metaextract", user="app", interval_calls=2,
                   interval_ms=3.0, interval_s=2.0, minute_calls=30, minute_ms=45.0, queryid="-123")
    fallback = Statement("pid:7", f"SELECT pg_sleep(5) WHERE '{EMAIL}' <> ''", 1, 0, 5000.0, 5000.0, pid=7, age_s=5.5)
    return SlowQueriesSnapshot("pg_stat_statements", (st, fallback), "a message", 12345.5, 1001.0 + 2 * i)


def tables() -> TablesSnapshot:
    part = TableStat("public", "events_2026", '"public"."events_2026"', 2048, 1024, 512, 512, 10, 1, 2, 0,
                     T0, 1.5)
    t = TableStat("public", "events", '"public"."events"', None, None, None, None, 100, 5, 1, 3, None, None,
                  locked=True, locked_by=42, last_bytes=4096, last_measured_age_s=30.0, partition_count=1,
                  partitions=(part,))
    return TablesSnapshot(50_000_000, (t,), 1002.0, "note")


def host() -> HostSnapshot:
    return HostSnapshot(12.5, 2, (0.5, 0.25, 0.125), 8 * 2**30, 2 * 2**30, 6 * 2**30, 0,
                        (DiskUsage("data directory", "/var/lib/pg", 100, 40, 60),), ("a note",), 1003.0)


def canned_events() -> list:
    return [
        E.ConnectionChanged(ConnectionState("disconnected", "refused", 2.0, 999.5)),
        E.ServerPolled(server()),
        E.ConnectionsPolled(connections(), prompt=True),
        E.SlowQueriesPolled(slow(), prompt=True),
        E.TablesPolled(tables(), prompt=True),
        E.HostPolled(host(), "", prompt=True),
        E.HostPolled(None, "host metrics unavailable for a remote server"),
        E.LimitsPolled(E.LimitsSnapshot(1_000_000, "metaextract", 12.5, '"public"."s"', 1004.0, "n"), prompt=True),
        E.PartTurnedOff("slow", "pg_stat_statements: permission denied"),
        E.AlertChanged("connections_pct", 85.0, 80.0, T0, None, "connections at 85.0 %"),
        E.AlertChanged("lock_wait_s", 12.0, 10.0, T0, T0 + timedelta(seconds=30), "back within"),
        E.FixRan("pool.max", True, "raised to 20", T0),
        E.ChecklistRan("images-mvp", (("pool.max", "pass"), ("backups.tested", "fail")), T0),
        E.RoundEnded(1005.0, ("server", "connections"), True),
    ]


def test_codec_round_trips_every_event_type():
    evs = canned_events()
    assert {type(e) for e in evs} == set(typing.get_args(E.Event)) | {E.LimitsPolled}  # every type is here
    for ev in evs:
        assert R.decode(R.encode(ev)) == ev
        assert R.loads(R.dumps(ev, q=False)) == ev
        assert R.loads(R.dumps(ev)) == ev  # the canned floats are within the kept precision
        json.dumps(R.encode(ev))  # JSON-able


def test_quantized_floats_keep_what_snapshot_json_prints():
    ev = E.ConnectionsPolled(dataclasses.replace(connections(), polled_at=123456.123456789))
    s = dataclasses.replace(ev.snap.sessions[0], xact_age_s=1.23456789, query_age_s=0.000123456789)
    back = R.loads(R.dumps(E.ConnectionsPolled(dataclasses.replace(ev.snap, sessions=(s,)))))
    assert back.snap.polled_at == 123456.123 and back.snap.sessions[0].xact_age_s == 1.235
    assert back.snap.sessions[0].query_age_s == 0.000123457
    assert R.quantize(0.998765432) == 0.998765 and R.quantize(float("nan")) != R.quantize(float("nan"))


def test_decode_tolerates_fields_added_and_missing():
    enc = R.encode(E.ServerPolled(server()))
    enc["info"]["commits_per_s"] = 5.0  # a field from a newer version: ignored
    del enc["info"]["tps"]  # an optional one left out: its default
    del enc["info"]["blks_read"]  # a required one left out: None
    back = R.decode(enc)
    assert back.info.tps is None and back.info.blks_read is None and back.info.version == "15.4"
    assert R.decode({"$": "NoSuchEvent", "x": [1]}) == {"$": "NoSuchEvent", "x": (1,)}


def test_codec_is_generic_over_fields(monkeypatch):
    """A ServerInfo that grew fields (as another change adds them) is recorded and read back whole."""
    @dataclasses.dataclass(frozen=True)
    class ServerInfoGrown(ServerInfo):
        by_shard: tuple = ()
        oldest_xact_at: datetime | None = None
        oldest_xact_query: str = ""

    grown = ServerInfoGrown(**{f.name: getattr(server(), f.name) for f in dataclasses.fields(ServerInfo)},
                            by_shard=(("active", 2),), oldest_xact_at=T0,
                            oldest_xact_query=f"UPDATE users SET x = 1 WHERE email = '{EMAIL}'")
    monkeypatch.setitem(R.types(), "ServerInfoGrown", ServerInfoGrown)
    enc = R.encode(E.ServerPolled(grown), queries="normalized")
    assert enc["info"]["by_shard"] == [["active", 2]]
    assert EMAIL not in json.dumps(enc)  # a *_query field is SQL: normalized too
    back = R.decode(enc)
    assert back.info.oldest_xact_at == T0 and back.info.by_shard == (("active", 2),)
    enc["info"]["$"] = "ServerInfo"  # read by a version without those fields
    assert R.decode(enc).info == server()


# -- query texts -------------------------------------------------------------------------------------

def test_normalized_literals_as_pg_stat_statements_shows_them():
    assert R.normalize_query(f"SELECT * FROM users WHERE email = '{EMAIL}' AND id = 42") == \
        "SELECT * FROM users WHERE email = $1 AND id = $2"
    out = R.normalize_query(f"SELECT 1 /* user_email='{EMAIL}' */")
    assert EMAIL not in out and "/*" in out


@pytest.mark.parametrize("text", [
    f"SELECT id, email FROM users WHERE email = '{EMAIL[:14]}",  # cut inside the literal
    f"SELECT pg_sleep(30), t1.a, \"col 1\" FROM t1 WHERE email = '{EMAIL}' AND n = 4242 AND x = ",
    f"SELECT $$ {EMAIL} $$, E'it\\'s {EMAIL}', 31337.5e3 FROM t1 WHERE",
    f"SELECT 1 /* note '{EMAIL}' */ FROM",
])
def test_fallback_when_pglast_cannot_parse_blanks_every_literal(text):
    from pglast import parser

    with pytest.raises(Exception):
        parser.normalize(text)
    out = R.normalize_query(text)
    for secret in (EMAIL, EMAIL[:14], "4242", "31337"):
        assert secret not in out, out
    if "t1" in text:
        assert "t1" in out  # identifiers with digits stay
    if '"col 1"' in text:
        assert '"col 1"' in out


def test_fallback_numbers_after_existing_parameters():
    assert R.blank_literals("SELECT $1, 'a', 5 FROM x WHERE") == "SELECT $1, $2, $3 FROM x WHERE"


def test_modes_and_passwords():
    q = f"SELECT * FROM users WHERE email = '{EMAIL}'"
    assert R.scrub_query(q, "full") == q
    assert R.scrub_query(q, "none") == ""
    assert EMAIL not in R.scrub_query(q, "normalized")
    for text in ("ALTER ROLE app PASSWORD 'hunter2-Secret'", "CREATE USER x WITH PASSWORD 'hunter2-Secret' LOGIN",
                 "SELECT dblink_connect('host=db password=hunter2-Secret dbname=x')"):
        for mode in ("full", "normalized"):
            assert "hunter2-Secret" not in R.scrub_query(text, mode), (mode, text)


def test_a_hidden_query_is_kept_as_it_is():
    enc = R.encode(E.ConnectionsPolled(connections()), queries="normalized")
    queries = [s["query"] for s in enc["snap"]["sessions"]]
    assert queries[1] == HIDDEN_QUERY.format(role="watcher")
    assert EMAIL not in queries[0] and "$1" in queries[0]
    slow_enc = json.dumps(R.encode(E.SlowQueriesPolled(slow()), queries="normalized"))
    assert EMAIL not in slow_enc


# -- recording -------------------------------------------------------------------------------------

class Wall:
    def __init__(self, t: datetime = T0) -> None:
        self.t = t.timestamp()

    def __call__(self) -> float:
        return self.t


def record_rounds(rec: Recorder, wall: Wall, n: int, *, start: int = 0, tables_every: int = 0, step: float = 2.0):
    for i in range(start, start + n):
        rec.take(E.ServerPolled(server(i)))
        rec.take(E.ConnectionsPolled(connections(i)))
        rec.take(E.HostPolled(host()))  # the same every round
        if tables_every and i % tables_every == 0:
            rec.take(E.TablesPolled(tables()))
        rec.take(E.RoundEnded(1005.0 + 2 * i, ("server", "connections", "host")))
        wall.t += step


def test_rounds_come_back_in_order_with_the_latest_state(state_dir):
    wall = Wall(T0 - timedelta(hours=1))
    rec = Recorder.open(state_dir, KEY, wall=wall, target="postgresql://app@db:5432/metaextract")
    rec.take(E.ConnectionChanged(ConnectionState("connected", last_ok_at=1000.0)))
    record_rounds(rec, wall, 10, tables_every=100)  # tables in round 0 only
    rec.take(E.AlertChanged("connections_pct", 85.0, 80.0, T0, None, "connections at 85.0 %"))
    record_rounds(rec, wall, 5, start=10)
    rec.close()
    assert rec.error is None
    with Recording(rec.path) as r:
        assert len(r) == 15 and r.target == "postgresql://app@db:5432/metaextract"
        rounds = list(r.rounds())
        assert [type(e).__name__ for e in rounds[0].events] == [
            "ConnectionChanged", "ServerPolled", "ConnectionsPolled", "HostPolled", "TablesPolled", "RoundEnded"]
        assert rounds[3].events[0].info.xacts == server(3).xacts
        assert rounds[3].stamps[0] <= rounds[3].at
        st = r.state(12)
        assert "tables" in st.panes and st.panes["server"].info.xacts == server(12).xacts  # tables from round 0
        assert [a.name for a in st.alerts] == ["connections_pct"] and st.connection.state.status == "connected"
        assert r.state(5).alerts == ()
        assert r.state_at(r.time(7) + timedelta(seconds=1)).index == 7
        assert r.state_at(T0 - timedelta(days=1)).index == 0  # before the recording: its first round
        assert r.rounds(r.time(2), r.time(4)).__next__().index == 2
        assert len(list(r.rounds(r.time(2), r.time(4)))) == 3


def test_unchanged_payload_is_a_reference_and_deltas_need_one_keyframe(state_dir):
    wall = Wall(T0 - timedelta(hours=1))
    rec = Recorder.open(state_dir, KEY, wall=wall)
    record_rounds(rec, wall, 130)
    rec.close()
    conn = sqlite3.connect(rec.path)
    rows = conn.execute("SELECT id, pane, kind, base, length(data) FROM payloads").fetchall()
    by_id = {r[0]: r for r in rows}
    assert [r for r in rows if r[1] == "host"] == [r for r in rows if r[1] == "host"][:1]  # stored once
    server_rows = [r for r in rows if r[1] == "server"]
    assert len(server_rows) == 130
    assert sum(1 for r in server_rows if r[2] == 0) == 3  # keyframes at 0, 60, 120
    for r in rows:
        if r[2] == 1:
            assert by_id[r[3]][2] == 0 and by_id[r[3]][1] == r[1]  # a delta's base is a keyframe of its pane
    keys = [r[4] for r in server_rows if r[2] == 0]
    deltas = [r[4] for r in server_rows if r[2] == 1]
    assert max(deltas) < min(keys)  # a delta is smaller than a keyframe
    with Recording(rec.path) as r:
        st = r.state(129)
        assert st.panes["server"].info == server(129) and st.panes["host"].snap == host()


def test_files_are_private_whatever_the_umask(state_dir):
    old = os.umask(0)
    try:
        wall = Wall()
        rec = Recorder.open(state_dir, KEY, wall=wall)
        record_rounds(rec, wall, 3)
        assert rec.flush()
        d = state_dir / "recordings" / KEY
        mode = lambda p: os.stat(p).st_mode & 0o777  # noqa: E731
        assert mode(state_dir / "recordings") == 0o700 and mode(d) == 0o700
        names = sorted(os.listdir(d))
        assert {f"{T0.date()}.sqlite", f"{T0.date()}.sqlite-wal", f"{T0.date()}.sqlite-shm"} <= set(names)
        for n in names:
            assert mode(d / n) == 0o600, n
        rec.close()
        named = state_dir / "named.sqlite"
        rec = Recorder.open(state_dir, KEY, path=named, wall=wall)
        record_rounds(rec, wall, 1)
        assert rec.flush()
        for n in ("named.sqlite", "named.sqlite-wal", "named.sqlite-shm", "named.sqlite.lock"):
            assert mode(state_dir / n) == 0o600, n
        rec.close()
    finally:
        os.umask(old)


def _fake_recording(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    Path(str(path) + "-wal").write_bytes(b"w")


def test_retention_and_the_size_cap(state_dir):
    root = state_dir / "recordings"
    today = T0.date()
    old = root / "other-db" / f"{today - timedelta(days=10)}.sqlite"
    recent = root / "other-db" / f"{today - timedelta(days=3)}.sqlite"
    older_recent = root / KEY / f"{today - timedelta(days=4)}.sqlite"
    kept_by_lock = root / KEY / f"{today - timedelta(days=20)}.sqlite"
    for p in (old, recent, older_recent, kept_by_lock):
        _fake_recording(p, 300_000)
    (root / KEY / "notes.txt").write_text("not a recording")
    held = R._try_lock(kept_by_lock)  # another process is writing it
    try:
        rec = Recorder.open(state_dir, KEY, wall=Wall(), retention_days=7, max_bytes=10**9)
        rec.close()
        assert not old.exists() and not Path(str(old) + "-wal").exists()
        assert recent.exists() and older_recent.exists() and kept_by_lock.exists()
        # the cap counts every file (the locked one too): the oldest that may go, goes first
        cap = R._size(kept_by_lock) + R._size(recent) + 100_000  # and the current one, < 100 kB
        rec = Recorder.open(state_dir, KEY, wall=Wall(), retention_days=7, max_bytes=cap)
        rec.close()
        assert not older_recent.exists()
        assert recent.exists() and rec.path.exists() and kept_by_lock.exists()
        assert (root / KEY / "notes.txt").exists()
    finally:
        os.close(held)


def test_daily_roll_carries_the_state_into_the_new_file(state_dir):
    wall = Wall(T0 + timedelta(minutes=9, seconds=50))  # 23:59:50 UTC
    rec = Recorder.open(state_dir, KEY, wall=wall)
    rec.take(E.AlertChanged("connections_pct", 85.0, 80.0, T0, None, "connections at 85.0 %"))
    record_rounds(rec, wall, 10, tables_every=1000)  # 5 rounds before midnight, 5 after
    rec.close()
    d = state_dir / "recordings" / KEY
    first, second = d / f"{T0.date()}.sqlite", d / f"{(T0 + timedelta(days=1)).date()}.sqlite"
    with Recording(first) as a, Recording(second) as b:
        assert len(a) == 5 and len(b) == 5
        st = b.state(0)
        assert st.panes["tables"].snap == tables()  # polled only before midnight: carried
        assert [x.name for x in st.alerts] == ["connections_pct"]
        assert not any(isinstance(e, E.TablesPolled) for e in b.round(0).events)  # carried, not replayed


def test_close_flushes_the_events_after_the_last_round(state_dir):
    wall = Wall()
    rec = Recorder.open(state_dir, KEY, wall=wall)
    record_rounds(rec, wall, 2)
    rec.take(E.FixRan("pool.max", True, "raised", T0))
    rec.close()
    rec.close()  # twice is fine
    with Recording(rec.path) as r:
        assert len(r) == 3 and r.round(2).partial and isinstance(r.round(2).events[0], E.FixRan)


def test_appending_to_a_recording_and_refusing_other_files(state_dir, tmp_path):
    wall = Wall()
    named = tmp_path / "launch.sqlite"
    for _ in range(2):
        rec = Recorder.open(state_dir, KEY, path=named, wall=wall)
        rec.take(E.AlertChanged("lock_wait_s", 12.0, 10.0, T0, None, "waiting"))
        record_rounds(rec, wall, 2)
        rec.close()
    with Recording(named) as r:
        assert len(r) == 4 and [a.name for a in r.state(3).alerts] == ["lock_wait_s"]
    with pytest.raises(RecordingError, match="records another database"):
        Recorder.open(state_dir, "999-other", path=named)
    foreign = tmp_path / "notes.txt"
    foreign.write_text("my notes")
    foreign.chmod(0o644)
    with pytest.raises(RecordingError, match="not a pgpreflight recording"):
        Recorder.open(state_dir, KEY, path=foreign)
    assert foreign.read_text() == "my notes" and foreign.stat().st_mode & 0o777 == 0o644  # untouched
    with pytest.raises(RecordingError, match="no such directory"):
        Recorder.open(state_dir, KEY, path=tmp_path / "nowhere" / "x.sqlite")
    held = Recorder.open(state_dir, KEY, path=named)
    try:
        with pytest.raises(RecordingError, match="another process"):
            Recorder.open(state_dir, KEY, path=named)
    finally:
        held.close()


def test_a_write_failure_is_said_once_and_does_not_raise(state_dir):
    wall = Wall()
    rec = Recorder.open(state_dir, KEY, wall=wall)
    record_rounds(rec, wall, 1)
    assert rec.flush()
    rec._file.conn.close()  # the file goes away under the writer
    record_rounds(rec, wall, 3)
    assert rec.flush()
    err = rec.take_error()
    assert err and err.startswith("cannot record into") and rec.take_error() is None
    rec.close()


# -- the Replayer ----------------------------------------------------------------------------------

@pytest.fixture
def recording(state_dir) -> Path:
    wall = Wall(T0 - timedelta(hours=1))
    rec = Recorder.open(state_dir, KEY, wall=wall)
    rec.take(E.ConnectionChanged(ConnectionState("connected", last_ok_at=1000.0)))
    record_rounds(rec, wall, 10, step=1.0)
    rec.take(E.AlertChanged("connections_pct", 85.0, 80.0, T0, None, "connections at 85.0 %"))
    record_rounds(rec, wall, 10, start=10, step=1.0)
    rec.close()
    return rec.path


async def next_round(gen, timeout: float = 5.0) -> list:
    out = []
    while True:
        ev = await asyncio.wait_for(gen.__anext__(), timeout)
        out.append(ev)
        if isinstance(ev, E.RoundEnded):
            return out


async def test_replayer_plays_every_round_paced_by_speed(recording):
    rp = Replayer(recording, speed=200, stop_at_end=True)
    assert rp.position == Recording(recording).time(0)
    rounds = []
    cur: list = []
    async for ev in rp.events():
        cur.append(ev)
        if isinstance(ev, E.RoundEnded):
            rounds.append(cur)
            cur = []
    assert len(rounds) == 20  # the state at the start (round 0), then rounds 1..19
    assert rp.at_end and rp.index == 19
    assert rounds[1][0].info.xacts == server(1).xacts
    assert [e.name for r in rounds for e in r if isinstance(e, E.AlertChanged)] == ["connections_pct"]


async def test_replayer_steps_jumps_and_goes_to_a_time_while_paused(recording):
    rec = Recording(recording)
    rp = Replayer(rec, paused=True, clock=lambda: 5000.0)
    gen = rp.events()
    first = await next_round(gen)
    assert first[-1].at == 5000.0  # rebased to this clock
    assert first[0].state.status == "connected" and first[1].info.xacts == server(0).xacts
    assert not any(isinstance(e, E.AlertChanged) for e in first)
    waiting = asyncio.ensure_future(next_round(gen))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # paused: nothing comes
    rp.step(12)
    st = await waiting
    assert rp.index == 12 and rp.position == rec.time(12)
    assert st[1].info.xacts == server(12).xacts and st[1].info.polled_at == pytest.approx(
        5000.0 - ((1005.0 + 24) - server(12).polled_at))  # as long before its round's end as it was then
    assert [e.name for e in st if isinstance(e, E.AlertChanged)] == ["connections_pct"]  # active then
    rp.jump(-5)
    st = await next_round(gen)
    assert rp.index == 7
    cleared = [e for e in st if isinstance(e, E.AlertChanged)]  # raised after round 7: it comes cleared
    assert [(e.name, e.cleared_at) for e in cleared] == [("connections_pct", rec.time(7))]
    rp.step(1)
    st = await next_round(gen)
    assert not any(isinstance(e, E.AlertChanged) for e in st)  # said once
    rp.goto(rec.time(15) + timedelta(milliseconds=500))
    await next_round(gen)
    assert rp.index == 15 and rp.seeks == 5
    rp.step(-100)
    await next_round(gen)
    assert rp.index == 0
    rp.poll_now()
    rp.wanted = {"server"}
    rp.show_idle = True
    assert not hasattr(rp, "set_every") and rp.span() == rec.span()
    rp.speed = 1000
    rp.resume()
    nxt = await next_round(gen)
    assert rp.index == 1 and not rp.in_seek and nxt[0].info.xacts == server(1).xacts
    await gen.aclose()


# -- the command -----------------------------------------------------------------------------------

def test_replay_json_prints_one_document_per_round(recording, capsys):
    assert main(["replay", str(recording), "--format", "json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 20
    docs = [json.loads(ln) for ln in lines]
    assert {"target", "taken_at", "server", "connections", "host", "recorded_at", "alerts"} <= set(docs[0])
    assert docs[0]["alerts"] == [] and docs[15]["alerts"][0]["name"] == "connections_pct"
    assert docs[15]["alerts"][0]["started_at"] == T0.isoformat() and docs[15]["alerts"][0]["threshold"] == 80.0
    assert docs[3]["connections"]["sessions"][0]["query"] == "SELECT * FROM users WHERE email = $1 AND id = $2"
    rec = Recording(recording)
    t5, t8 = rec.time(5), rec.time(8)
    assert main(["replay", str(recording), "--format", "json", "--from", t5.strftime("%H:%M:%S.%f"),
                 "--to", t8.isoformat()]) == 0
    part = [json.loads(ln) for ln in capsys.readouterr().out.splitlines()]
    assert [d["recorded_at"] for d in part] == [rec.time(i).isoformat() for i in range(5, 9)]


def test_replay_text_and_bad_files(recording, tmp_path, capsys):
    assert main(["replay", str(recording), "--format", "text", "--from", Recording(recording).time(19).isoformat()]) == 0
    out = capsys.readouterr().out
    assert out.count("== recorded") == 1 and "connections_pct" in out
    other = tmp_path / "other.sqlite"
    c = sqlite3.connect(other)
    c.execute("CREATE TABLE t (x)")
    c.commit()
    c.close()
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"\x00garbage" * 100)
    for path, what in ((tmp_path / "missing.sqlite", "no such file"), (other, "not a pgpreflight recording"),
                       (garbage, "not a pgpreflight recording"), (tmp_path, "is a directory")):
        assert main(["replay", str(path), "--format", "json"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and what in err and "Traceback" not in err
    assert main(["replay", str(recording), "--format", "json", "--from", "yesterday"]) == 2
    assert "--from" in capsys.readouterr().err
    import tui.replay as replay_module
    from unittest import mock

    with mock.patch.object(replay_module, "run_replay_tui", return_value=0) as tui:  # the TUI (not run here)
        assert main(["replay", str(recording)]) == 0
    assert str(tui.call_args.args[0]) == str(recording)
    assert main(["replay", str(tmp_path / "none.sqlite")]) == 2  # a missing file: one line, before the TUI
    assert "none.sqlite" in capsys.readouterr().err


def test_parse_time():
    day = T0.date()
    assert parse_time("14:03", day) == datetime(2026, 5, 1, 14, 3, tzinfo=timezone.utc)
    assert parse_time("14:03:07", day) == datetime(2026, 5, 1, 14, 3, 7, tzinfo=timezone.utc)
    assert parse_time("2026-05-02T01:00:00Z", day) == datetime(2026, 5, 2, 1, tzinfo=timezone.utc)
    assert parse_time("2026-05-02T03:00:00+02:00", day) == datetime(2026, 5, 2, 1, tzinfo=timezone.utc)
    assert parse_time("2026-05-02 01:00", day) == datetime(2026, 5, 2, 1, tzinfo=timezone.utc)
    for bad in ("25:00", "noon", ""):
        with pytest.raises(ValueError):
            parse_time(bad, day)


def test_record_flags_into_config(capsys, monkeypatch):
    from tui.cli import build_parser, make_config

    monkeypatch.setenv("DATABASE_URL", "postgresql://app@localhost:5432/db")
    for cmd in ("monitor", "demo", "watch"):
        args = build_parser().parse_args([cmd, "--record", "/tmp/x.sqlite", "--record-queries", "none"])
        for k in ("dsn", "read_only", "state_dir", "connect_timeout", "no_color", "checklist", "app_root",
                  "backup_dir", "crontab_file"):
            setattr(args, k, getattr(args, k, None))
        cfg = make_config(args)
        assert cfg.record and cfg.record_path == Path("/tmp/x.sqlite") and cfg.record_queries == "none"
    args = build_parser().parse_args(["watch", "--no-record"])
    for k in ("dsn", "read_only", "state_dir", "connect_timeout", "no_color", "checklist", "app_root",
              "backup_dir", "crontab_file"):
        setattr(args, k, getattr(args, k, None))
    assert make_config(args).record is False
    assert Config(target=resolve_target("postgresql://a@b/c", env={})).record_queries == "normalized"
    with pytest.raises(UsageError, match="record-queries"):
        Config(target=resolve_target("postgresql://a@b/c", env={}), record_queries="some")
    assert main(["watch", "--record", "/tmp/x.sqlite", "--no-record", "--dsn", "postgresql://a@b/c"]) == 2
    assert "contradict" in capsys.readouterr().err
    assert main(["watch", "--record-queries", "raw", "--dsn", "postgresql://a@b/c"]) == 2
