"""`pgpreflight watch` against the real server: alert lines and exit 1 with a threshold set low, the
OpenMetrics file parsed by prometheus_client's own parser, exit 0 on an idle database, SIGTERM; and the
Monitor service on a real session."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pg_helpers import fresh_database, own_cluster, wait_until

from tui.config import Config, resolve_target
from tui.db.monitor import Monitor
from tui.model import events as E

pytestmark = pytest.mark.pg
ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cret-Watch-Pw"


@pytest.fixture(scope="module")
def cluster():
    """A server of its own: the thresholds look at every session of the server, and another module's
    leftover statement (a pg_sleep still running) would raise long_query_s here."""
    yield from own_cluster()


@pytest.fixture(scope="module")
def watchdb(cluster):
    async def setup():
        dsn = await fresh_database(cluster, "watchdb")
        import asyncpg

        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("CREATE TABLE t (id serial PRIMARY KEY, v text)")
            await conn.execute("INSERT INTO t (v) SELECT 'x' FROM generate_series(1, 100)")
        finally:
            await conn.close()
        return dsn
    return asyncio.run(setup())


def watch(dsn, tmp_path, *args, timeout=90, **extra_env):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "DATABASE_URL"}
    env.update(extra_env)
    env["PGPREFLIGHT_CONFIG"] = str(tmp_path / "no-config.toml")
    cmd = [sys.executable, "-m", "tui", "watch", "--dsn", dsn, "--state-dir", str(tmp_path / "state"),
           "--checklist", "general", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=timeout)


def parse(path: Path) -> dict:
    from prometheus_client.parser import text_string_to_metric_families

    return {f.name: f for f in text_string_to_metric_families(path.read_text())}


def value(fams, name, **labels):
    for s in fams[name].samples:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    raise KeyError((name, labels))


def test_low_threshold_raises_alert_exits_1_and_openmetrics_parses(watchdb, tmp_path):
    prom = tmp_path / "pgpreflight.prom"
    r = watch(watchdb, tmp_path, "--for", "5s", "--refresh", "0.5", "--openmetrics", str(prom),
              "--threshold", "connections_pct=0", PGPASSWORD=SECRET)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stdout.splitlines()
    alerts = [ln for ln in lines if " ALERT connections_pct: " in ln]
    assert len(alerts) == 1, r.stdout  # raised once, not every round
    assert "connections at" in alerts[0] and "(>= 0.0 %)" in alerts[0]
    assert all(" ALERT " in ln or " CLEARED " in ln for ln in lines), r.stdout
    fams = parse(prom)
    assert value(fams, "pgpreflight_alert", threshold="connections_pct") == 1
    assert value(fams, "pgpreflight_alert", threshold="long_query_s") == 0
    assert value(fams, "pgpreflight_threshold", threshold="connections_pct") == 0
    assert value(fams, "pgpreflight_threshold", threshold="xid_age") == 1.5e9
    assert value(fams, "pgpreflight_alert_started_timestamp_seconds", threshold="connections_pct") > 1e9
    assert value(fams, "pgpreflight_connections") >= 1
    assert value(fams, "pgpreflight_up") == 1
    assert value(fams, "pgpreflight_database_size_bytes") > 0
    assert value(fams, "pgpreflight_threshold_figure", threshold="xid_age") > 0
    assert value(fams, "pgpreflight_table_size_bytes", table="public.t") > 0
    assert value(fams, "pgpreflight_checklist_items_failing") >= 0
    assert "pgpreflight_target_info" in fams
    assert SECRET not in prom.read_text() + r.stdout + r.stderr


def test_idle_database_default_thresholds_exits_0(watchdb, tmp_path):
    prom = tmp_path / "m.prom"
    r = watch(watchdb, tmp_path, "--for", "3s", "--refresh", "0.5", "--openmetrics", str(prom))
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert r.stdout == ""
    fams = parse(prom)
    assert all(s.value == 0 for s in fams["pgpreflight_alert"].samples)
    assert len(fams["pgpreflight_alert"].samples) == 8


def test_threshold_from_config_file_and_clear(watchdb, tmp_path, cluster):
    """A long query raises long_query_s (from the config file's [thresholds]); it clears when it ends."""
    import asyncpg

    cfg = tmp_path / "config.toml"
    cfg.write_text("[thresholds]\nlong_query_s = 0.5\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "DATABASE_URL"}
    env["PGPREFLIGHT_CONFIG"] = str(cfg)

    async def go():
        c = await asyncpg.connect(watchdb)
        sleeper = asyncio.ensure_future(c.execute("SELECT pg_sleep(3) /* watch-long */"))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tui", "watch", "--dsn", watchdb, "--state-dir", str(tmp_path / "s"),
            "--checklist", "general", "--for", "8s", "--refresh", "0.3",
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=env)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        await sleeper
        await c.close()
        return proc.returncode, out.decode(), err.decode()

    rc, out, err = asyncio.run(go())
    assert rc == 1, err
    raised = [ln for ln in out.splitlines() if " ALERT long_query_s: " in ln]
    cleared = [ln for ln in out.splitlines() if " CLEARED long_query_s: " in ln]
    assert len(raised) == 1 and len(cleared) == 1, out
    assert "(> 0.5 s)" in raised[0] and "pid " in raised[0]
    started = raised[0].split(" ")[0]
    assert f"(started {started}, lasted" in cleared[0]


def test_sigterm_stops_it(watchdb, tmp_path):
    prom = tmp_path / "t.prom"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "DATABASE_URL"}
    env["PGPREFLIGHT_CONFIG"] = str(tmp_path / "none.toml")
    p = subprocess.Popen([sys.executable, "-m", "tui", "watch", "--dsn", watchdb, "--state-dir",
                          str(tmp_path / "s"), "--checklist", "general", "--refresh", "0.5",
                          "--openmetrics", str(prom)], cwd=ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not prom.exists():
            assert p.poll() is None, p.communicate()
            assert time.monotonic() < deadline, "no OpenMetrics file after 30 s"
            time.sleep(0.05)
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=15)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err
    assert "Traceback" not in err


@pytest.mark.parametrize("args, says", [
    (["--threshold", "nope=1"], "unknown threshold 'nope'"),
    (["--threshold", "xid_age=lots"], "threshold xid_age must be a number"),
    (["--threshold", "disk_pct"], "expected NAME=VALUE"),
    (["--threshold", "lock_wait_s=-1"], "0 or more"),
    (["--for", "soon"], "'soon' is not a duration"),
    (["--for", "0s"], "must be longer than 0"),
])
def test_bad_input_one_line_exit_2(watchdb, tmp_path, args, says):
    r = watch(watchdb, tmp_path, *args)
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.count("\n") == 1 and says in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_bad_threshold_in_config_file(watchdb, tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[thresholds]\ncache_hit = 90\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "DATABASE_URL"}
    env["PGPREFLIGHT_CONFIG"] = str(cfg)
    r = subprocess.run([sys.executable, "-m", "tui", "watch", "--dsn", watchdb, "--for", "1s"],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert f"config file {cfg}: unknown threshold 'cache_hit'" in r.stderr


async def test_monitor_on_a_real_server(watchdb):
    cfg = Config(target=resolve_target(watchdb, env={}), refresh=0.2, tables_refresh=0.5)
    mon = Monitor(cfg, wanted={"server", "connections", "tables", "limits", "host"})
    seen: list = []
    gen = mon.events()

    async def consume():
        async for ev in gen:
            seen.append(ev)

    task = asyncio.ensure_future(consume())
    try:
        await wait_until(lambda: _async(sum(isinstance(e, E.RoundEnded) for e in seen) >= 3), timeout=20,
                         what="three rounds")
        mon.show_idle = True
        await wait_until(lambda: _async(any(isinstance(e, E.ConnectionsPolled) and e.snap.includes_idle
                                            for e in seen)), timeout=10, what="a listing with idle sessions")
        app = await mon.conn.fetchval("SELECT current_setting('application_name')")
        lock = await mon.conn.fetchval("SELECT current_setting('lock_timeout')")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await gen.aclose()
    assert (app, lock) == ("pgpreflight/poll", "500ms")
    kinds = {type(e) for e in seen}
    assert {E.ConnectionChanged, E.ServerPolled, E.ConnectionsPolled, E.TablesPolled, E.LimitsPolled,
            E.HostPolled, E.RoundEnded} <= kinds
    assert E.SlowQueriesPolled not in kinds  # not wanted
    lim = next(e.snap for e in seen if isinstance(e, E.LimitsPolled))
    assert lim.xid_age > 0 and lim.sequence_name == "public.t_id_seq" and 0 < lim.sequence_pct < 1
    host = next(e for e in seen if isinstance(e, E.HostPolled))
    assert host.snap is not None and host.snap.disks
    assert mon.conn is None


async def _async(v):
    return v
