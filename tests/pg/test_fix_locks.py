"""DDL that never stalls the app, against the real server: the lock pre-check names the idle-in-transaction
holder first; the lock retries keep a writer's worst wait under 0.5 s where one long lock_timeout does not;
the result names the root holder (terminate); headless prints the exact pg_terminate_backend call and the
--yes rerun command; a plan that changed since it was confirmed does not run; `t` in the TUI result panel
ends the holder (two confirmations, audited) and the retried step passes. Waits poll with a timeout."""
from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
import time

import asyncpg
import pytest
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from tui import audit
from tui.checklist.spec import load_checklist
from tui.config import Config, resolve_target
from tui.fixes import PlanChanged, plan_fix, run_fix
from pg_helpers import fresh_database, wait_until

pytestmark = [pytest.mark.pg]

DB = "fix_locks"
ITEM = "integrity.balance_check"  # images-mvp: add_check_constraint on credit_balances (balance >= 0)
CNAME = "check_balance_nonnegative"
PARAMS = {"table": "credit_balances", "name": CNAME, "expression": "balance >= 0"}


@pytest.fixture(scope="module")
def locks_dsn(cluster):
    async def setup():
        dsn = await fresh_database(cluster, DB)
        c = await asyncpg.connect(dsn)
        try:
            await c.execute("CREATE TABLE credit_balances (user_id int PRIMARY KEY, balance int NOT NULL)")
            await c.execute("INSERT INTO credit_balances SELECT g, g FROM generate_series(1, 200) g")
        finally:
            await c.close()
        return dsn
    return asyncio.run(setup())


@pytest.fixture
async def clean(locks_dsn):
    """No CHECK left on credit_balances before and after each test."""
    async def drop():
        c = await asyncpg.connect(locks_dsn)
        try:
            await c.execute(f"ALTER TABLE credit_balances DROP CONSTRAINT IF EXISTS {CNAME}")
        finally:
            await c.close()
    await drop()
    yield locks_dsn
    await drop()


def cfg_for(dsn, state_dir, **kw) -> Config:
    return Config(target=resolve_target(dsn, env={}), state_dir=state_dir, **kw)


async def constraint_state(dsn):
    c = await asyncpg.connect(dsn)
    try:
        return await c.fetchval("SELECT convalidated FROM pg_constraint WHERE conname = $1", CNAME)
    finally:
        await c.close()


async def idle_in_transaction(dsn, app="test-iit-holder"):
    """A session that touched the table in a transaction and went idle: it holds ACCESS SHARE."""
    holder = await asyncpg.connect(dsn, server_settings={"application_name": app})
    await holder.execute("BEGIN")
    await holder.fetchval("SELECT balance FROM credit_balances WHERE user_id = 1")
    pid = holder.get_server_pid()
    watch = await asyncpg.connect(dsn)
    try:
        async def idle():
            return await watch.fetchval("SELECT state = 'idle in transaction' FROM pg_stat_activity WHERE pid = $1", pid)
        await wait_until(idle, what="the holder idle in transaction")
    finally:
        await watch.close()
    return holder


async def end_sessions(dsn, *conns):
    """End the test's own sessions on the server side and wait until they are gone."""
    pids = [c.get_server_pid() for c in conns]
    for c in conns:
        c.terminate()
    watch = await asyncpg.connect(dsn)
    try:
        await watch.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = ANY($1::int[])", pids)

        async def gone():
            return not await watch.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::int[])", pids)
        await wait_until(gone, what="the test's sessions to end")
    finally:
        await watch.close()


class Writer:
    """The app: UPDATEs on credit_balances in a loop, each one timed."""

    def __init__(self, dsn):
        self.dsn, self.waits, self.stop = dsn, [], asyncio.Event()
        self.task = None

    async def _loop(self):
        c = await asyncpg.connect(self.dsn, server_settings={"application_name": "test-writer"})
        try:
            i = 0
            while not self.stop.is_set():
                t0 = time.perf_counter()
                await c.execute("UPDATE credit_balances SET balance = balance WHERE user_id = $1", 100 + i % 50)
                self.waits.append(time.perf_counter() - t0)
                i += 1
                await asyncio.sleep(0.005)  # pacing of the app's writes, not a wait for a state
        finally:
            await c.close()

    async def __aenter__(self):
        self.task = asyncio.create_task(self._loop())
        await wait_until(lambda: asyncio.sleep(0, len(self.waits) >= 5), what="the writer running")
        return self

    async def __aexit__(self, *exc):
        self.stop.set()
        await asyncio.wait_for(self.task, 30)


async def test_lock_precheck_warns_and_names_the_idle_in_transaction_holder_first(clean, state_dir):
    dsn = clean
    # an active reader of the table, older than the idle-in-transaction one: still, the idle one is the root
    reader = await asyncpg.connect(dsn, server_settings={"application_name": "test-reader"})
    await reader.execute("BEGIN")
    await reader.fetchval("SELECT 1 FROM credit_balances LIMIT 1")
    slow = asyncio.ensure_future(reader.fetchval("SELECT count(*) FROM credit_balances, pg_sleep(30)"))
    holder = await idle_in_transaction(dsn)
    try:
        plan = await plan_fix(cfg_for(dsn, state_dir), "add_check_constraint", PARAMS)
        warn = next(p for p in plan.preconditions if p.name == "lock conflicts")
        assert warn.warn and not warn.ok
        assert not plan.blocked and warn not in plan.blockers  # a warning never blocks the run
        assert [h["pid"] for h in warn.holders] == [holder.get_server_pid(), reader.get_server_pid()]
        first = warn.holders[0]
        assert first["state"] == "idle in transaction" and first["action"] == "terminate"
        assert first["application"] == "test-iit-holder" and "credit_balances" in first["query"]
        assert first["age_s"] >= 0
        assert warn.holders[1]["state"] == "active" and warn.holders[1]["action"] == "cancel"
        line = next(x for x in plan.text().splitlines() if "lock conflicts" in x)
        assert line.strip().startswith("[!!] lock conflicts")
        assert line.index(f"pid {holder.get_server_pid()}") < line.index(f"pid {reader.get_server_pid()}")
    finally:
        slow.cancel()
        await end_sessions(dsn, holder, reader)
        await asyncio.gather(slow, return_exceptions=True)
    plan = await plan_fix(cfg_for(dsn, state_dir), "add_check_constraint", PARAMS)
    warn = next(p for p in plan.preconditions if p.name == "lock conflicts")
    assert warn.ok and not warn.holders  # nobody left: the warning is an ok line


async def test_retries_keep_a_writers_worst_wait_under_half_a_second(clean, state_dir):
    dsn = clean
    cfg = cfg_for(dsn, state_dir)
    holder = await idle_in_transaction(dsn)
    try:
        # the old behaviour first, so this test can tell the two apart: one try under a 1.5 s lock_timeout
        async with Writer(dsn) as old:
            res_old = await run_fix(cfg, "add_check_constraint", PARAMS, confirmations=1,
                                    options={"lock_budget_s": 0, "lock_timeout_ms": 1500})
        assert not res_old.ok and res_old.figures["lock_tries"] == 1
        assert max(old.waits) > 1.0, max(old.waits)  # every write queued behind the waiting ALTER

        async with Writer(dsn) as w:
            t0 = time.monotonic()
            res = await run_fix(cfg, "add_check_constraint", PARAMS, confirmations=1, options={"lock_budget_s": 3})
            took = time.monotonic() - t0
        n_during = len(w.waits)
        assert not res.ok and 2.5 <= took < 8, took
        assert res.figures["lock_tries"] >= 3, res.figures
        assert n_during > 50  # the writer kept writing all along
        assert max(w.waits) < 0.5, f"worst writer wait {max(w.waits):.3f} s"
        assert res.blocker is not None
        assert res.blocker["pid"] == holder.get_server_pid() and res.blocker["action"] == "terminate"
        assert res.blocker["state"] == "idle in transaction" and res.blocker["application"] == "test-iit-holder"
        assert f"root holder: pid {holder.get_server_pid()}" in res.summary
        assert res.blocker_call() == f"SELECT pg_terminate_backend({holder.get_server_pid()});"
        assert not res.left_behind
        assert await constraint_state(dsn) is None  # nothing was added
        entries = [e for e in audit.read(state_dir) if e["action"] == "fix add_check_constraint"]
        assert entries[-1]["outcome"].startswith("failed: could not take the ACCESS EXCLUSIVE lock")
    finally:
        await end_sessions(dsn, holder)
    res = await run_fix(cfg, "add_check_constraint", PARAMS, confirmations=1, options={"lock_budget_s": 3})
    assert res.ok and res.figures["lock_tries"] == 1, res
    assert await constraint_state(dsn) is True


async def test_a_changed_plan_is_refused_and_nothing_runs(clean, state_dir):
    dsn = clean
    cfg = cfg_for(dsn, state_dir)
    confirmed = await plan_fix(cfg, "add_check_constraint", PARAMS)
    assert len(confirmed.statements) == 2  # ADD ... NOT VALID, VALIDATE
    # meanwhile someone adds it NOT VALID: the plan is now VALIDATE only
    c = await asyncpg.connect(dsn)
    try:
        await c.execute(f"ALTER TABLE credit_balances ADD CONSTRAINT {CNAME} CHECK (balance >= 0) NOT VALID")
    finally:
        await c.close()
    with pytest.raises(PlanChanged) as err:
        await run_fix(cfg, "add_check_constraint", PARAMS, confirmations=1, confirmed_plan=confirmed)
    assert err.value.plan is not None and err.value.plan.statements == (confirmed.statements[1],)
    assert await constraint_state(dsn) is False  # not validated: nothing ran
    assert audit.read(state_dir)[-1]["outcome"] == "refused: the plan changed since it was confirmed"
    # a statement differing only in text is a change too; the same plan runs
    odd = dataclasses.replace(err.value.plan, statements=(err.value.plan.statements[0] + " ",))
    with pytest.raises(PlanChanged):
        await run_fix(cfg, "add_check_constraint", PARAMS, confirmations=1, confirmed_plan=odd)
    res = await run_fix(cfg, "add_check_constraint", PARAMS, confirmations=1, confirmed_plan=err.value.plan)
    assert res.ok and await constraint_state(dsn) is True


async def test_headless_prints_the_terminate_call_and_the_rerun_command(clean, tmp_path):
    dsn = clean
    holder = await idle_in_transaction(dsn)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "DATABASE_URL"}
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tui", "fix", ITEM, "--dsn", dsn, "--state-dir", str(tmp_path), "--yes",
            "--lock-budget", "1.5", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
        out, err = await asyncio.wait_for(proc.communicate(), 120)
        out, err = out.decode(), err.decode()
        pid = holder.get_server_pid()
        assert proc.returncode == 1, out + err
        assert "[!!] lock conflicts" in out and f"pid {pid} idle in transaction" in out  # the plan warned
        assert f"SELECT pg_terminate_backend({pid});" in out
        rerun = next(x.strip() for x in out.splitlines() if x.strip().startswith("pgpreflight fix "))
        assert rerun.startswith(f"pgpreflight fix {ITEM} --dsn ") and rerun.endswith("--lock-budget 1.5 --yes")
        assert "Traceback" not in err
        # pgpreflight did not end it: the holder is still there, in its transaction
        assert await holder.fetchval("SELECT count(*) FROM credit_balances") == 200
    finally:
        await end_sessions(dsn, holder)
    assert await constraint_state(dsn) is None
    # the printed command is runnable as printed (the DSN resolves to the same server)
    import shlex

    argv = shlex.split(rerun)[2:]
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "tui", "fix", *argv,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                                env=env)
    out2, err2 = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, out2.decode() + err2.decode()
    assert await constraint_state(dsn) is True


# --------------------------------------------------------------------------------------------- the TUI
class LockApp(App):
    BINDINGS = [Binding("f", "fix", "Fix")]

    def __init__(self, config: Config):
        from tui.screens.fix_flow import FixController

        super().__init__()
        self.config = config
        self.checklist = load_checklist("images-mvp")
        self.fixes = FixController(self, config, lock_budget_s=1.5)
        self.finished = []

    def compose(self) -> ComposeResult:
        yield Static("monitor")

    def action_fix(self) -> None:
        self.fixes.request_fix(ITEM, self.checklist)

    def on_fix_finished(self, event) -> None:
        self.finished.append(event)


async def until(pilot, cond, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not (await cond() if asyncio.iscoroutinefunction(cond) else cond()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


async def test_t_in_the_result_panel_ends_the_holder_and_the_retry_passes(clean, tmp_path):
    from widgets.confirm import ConfirmSignalScreen
    from widgets.fix_plan import FixPlanScreen
    from widgets.fix_progress import FixProgressPanel

    dsn = clean
    holder = await idle_in_transaction(dsn)
    pid = holder.get_server_pid()
    watch = await asyncpg.connect(dsn)
    app = LockApp(cfg_for(dsn, tmp_path))
    try:
        async with app.run_test(size=(140, 40)) as pilot:
            await pilot.press("f")
            await until(pilot, lambda: isinstance(app.screen, FixPlanScreen), "the plan")
            assert any(p.warn and not p.ok for p in app.screen.plan.preconditions)
            await pilot.press("enter")
            await until(pilot, lambda: app.finished, "the first run to end")
            first = app.finished[0].result
            assert not first.ok and first.blocker["pid"] == pid and first.blocker["action"] == "terminate"
            panel = app.screen.query_one(FixProgressPanel)
            panel.focus()
            await pilot.pause()
            assert f"pid {pid}" in str(panel.query_one("#fix-progress-phase").render())
            assert "t: terminate it" in str(panel.query_one("#fix-progress-hint").render())
            t_key = app.active_bindings.get("t")  # in the footer: shown and enabled on this result
            assert t_key is not None and t_key.enabled and t_key.binding.show
            assert t_key.binding.id == "fix_progress.end_blocker"
            await pilot.press("t")
            await until(pilot, lambda: isinstance(app.screen, ConfirmSignalScreen), "the first confirmation")
            assert app.screen.sessions[0].pid == pid and not app.screen.second
            assert await watch.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid) == 1
            await pilot.press("t")
            await until(pilot, lambda: isinstance(app.screen, ConfirmSignalScreen) and app.screen.second,
                        "the second confirmation")
            assert await watch.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid) == 1
            await pilot.press("t")
            await until(pilot, lambda: len(app.finished) == 2, "the retried fix to end")
            second = app.finished[1].result
            assert second.ok, second.summary
    finally:
        holder.terminate()
    try:
        assert await watch.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid) == 0
        assert await watch.fetchval("SELECT convalidated FROM pg_constraint WHERE conname = $1", CNAME) is True
    finally:
        await watch.close()
    entries = audit.read(tmp_path)
    signal = [e for e in entries if e["action"] == "fix terminate_backend"]
    assert [e["outcome"] for e in signal] == ["started", f"ok: terminated {pid}"]
    assert signal[0]["statements"] == [f"SELECT pg_terminate_backend({pid})"]


async def test_own_fix_session_shows_as_such_in_the_blocking_chains(clean, state_dir):
    """holder (idle in transaction) → the fix's ALTER (pgpreflight/fix, waiting) → the app's UPDATE: the chain
    names the middle one "pgpreflight fix: ALTER TABLE …", not "(not listed)"."""
    from tui.db.poller import ConnectionsPoller

    dsn = clean
    holder = await idle_in_transaction(dsn)
    writer = await asyncpg.connect(dsn, server_settings={"application_name": "test-writer"})
    watch = await asyncpg.connect(dsn)
    fix = asyncio.create_task(run_fix(cfg_for(dsn, state_dir), "add_check_constraint", PARAMS, confirmations=1,
                                      options={"lock_budget_s": 0, "lock_timeout_ms": 30000}))
    update = None
    try:
        async def alter_waiting():
            return await watch.fetchval("SELECT pid FROM pg_stat_activity WHERE application_name = 'pgpreflight/fix' "
                                        "AND wait_event_type = 'Lock' AND query LIKE '%ALTER TABLE%'")  # after the tool's marker
        alter_pid = await wait_until(alter_waiting, what="the fix's ALTER waiting for its lock")
        update = asyncio.ensure_future(writer.execute("UPDATE credit_balances SET balance = balance WHERE user_id = 7"))

        async def writer_waiting():
            return await watch.fetchval("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1",
                                        writer.get_server_pid())
        await wait_until(writer_waiting, what="the writer queued behind the ALTER")
        poller = ConnectionsPoller()
        for include_idle in (False, True):
            snap = await poller.poll(watch, include_idle=include_idle)
            assert all(not s.own for s in snap.sessions)  # our own are never listed as sessions
            assert [s.pid for s in snap.own_blockers] == [alter_pid]
            assert snap.blocking_chains() == [(0, holder.get_server_pid()), (1, alter_pid),
                                              (2, writer.get_server_pid())]
            label = snap.by_pid()[alter_pid].chain_label()
            assert label.startswith('pgpreflight fix: ALTER TABLE "public"."credit_balances" ADD CONSTRAINT'), label
        assert snap.to_dict()["own_blockers"][0]["own"] is True
    finally:
        await end_sessions(dsn, holder)
        res = await asyncio.wait_for(fix, 30)
        if update is not None:
            await asyncio.wait_for(update, 30)
        await writer.close()
        await watch.close()
    assert res.ok, res.summary
