"""The check service (tui.checklist.service) with a fake connection: which probes a re-verify runs again
(tui.checklist.reuse), re-verifying an item and the roll-ups that read it, ChecklistRan to listeners,
runs that never overlap, a lost target in one line, and the state file written through the service."""
from __future__ import annotations

import asyncio

import pytest

from tui.checklist.reuse import SIGNALS_SQL, ProbeCache
from tui.checklist.service import CheckService, StateError
from tui.checklist.spec import parse_checklist
from tui.checklist.state import load_state
from tui.config import Config, TargetError, resolve_target
from tui.model.events import ChecklistRan

pytestmark = pytest.mark.unit

CHECKLIST = '''
name = "fake"
title = "Fake"
[[section]]
id = "s"
title = "S"

[[section.item]]
id = "cat"
title = "From the catalogs"
[section.item.probe]
kind = "sql"
expect = "empty"
inputs = ["catalog"]
query = "SELECT 'cat'"

[[section.item]]
id = "live"
title = "From the statistics"
[section.item.probe]
kind = "sql"
expect = "empty"
query = "SELECT 'live'"

[[section.item]]
id = "setting"
title = "A setting"
[section.item.probe]
kind = "setting"
name = "log_min_duration_statement"
op = "between"
value = [0, 1000]

[[section.item]]
id = "person"
title = "A person confirms"
manual = true

[[section]]
id = "c"
title = "Criteria"

[[section.item]]
id = "c.queries"
title = "The queries"
[section.item.probe]
kind = "items"
refs = ["cat", "live"]

[[section.item]]
id = "c.person"
title = "The person"
[section.item.probe]
kind = "items"
refs = ["person"]

[[section.item]]
id = "c.all"
title = "Everything a person confirms"
[section.item.probe]
kind = "items"
refs = ["c.person"]
'''

IDENTITY_SQL = "SELECT (SELECT system_identifier FROM pg_control_system())::text AS sysid, current_database() AS db"
SETTING_SQL = "SELECT setting, unit, pending_restart, source FROM pg_settings WHERE name = $1"


class Server:
    """What the fake sessions answer; every query is logged by a short name."""

    def __init__(self) -> None:
        self.sysid = "7301"
        self.rows = {"cat": [], "live": []}  # findings of the two sql probes
        self.setting = "-1"
        self.signals = {"version": 150000, "track_counts": True, "conf_loaded": "t0", "started": "s0",
                        "stats_reset": None, "catalog_writes": "100"}
        self.log: list[str] = []
        self.active = 0
        self.most_active = 0
        self.fail_next_connect: str | None = None
        self.connects = 0


class FakeTx:
    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        return False


class FakeConn:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.closed = False

    async def _q(self, text: str) -> str:
        s = self.server
        name = ("identity" if text == IDENTITY_SQL else "signals" if text == SIGNALS_SQL else
                "setting" if text == SETTING_SQL else text.split("'")[1] if text.startswith("SELECT '") else
                "set_local" if text.startswith("SET LOCAL") else text)
        s.log.append(name)
        s.active += 1
        s.most_active = max(s.most_active, s.active)
        try:
            await asyncio.sleep(0)  # another task may run here: runs must still not overlap
        finally:
            s.active -= 1
        return name

    def transaction(self, **kw):
        return FakeTx()

    async def execute(self, text, *a):
        await self._q(text)
        return "SET"

    async def fetchrow(self, text, *a):
        name = await self._q(text)
        if name == "identity":
            return {"sysid": self.server.sysid, "db": "db"}
        if name == "signals":
            return dict(self.server.signals)
        if name == "setting":
            return {"setting": self.server.setting, "unit": "ms", "pending_restart": False, "source": "default"}
        raise AssertionError(f"unexpected fetchrow {text!r}")

    async def fetch(self, text, *a):
        name = await self._q(text)
        return [(r,) for r in self.server.rows[name]]

    def is_closed(self) -> bool:
        return self.closed

    def terminate(self) -> None:
        self.closed = True

    async def close(self) -> None:
        self.closed = True


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(tmp_path, server: Server, **kw) -> CheckService:
    async def connect(target, **opts):
        server.connects += 1
        assert opts["role"] == "check"
        if server.fail_next_connect:
            reason, server.fail_next_connect = server.fail_next_connect, None
            raise TargetError(target.display, reason)
        return FakeConn(server)

    cfg = Config(target=resolve_target("postgresql://me@db.example:5432/db", env={}), state_dir=tmp_path / "state",
                 app_root=tmp_path)
    return CheckService(cfg, checklist=parse_checklist(CHECKLIST), connect=connect, **kw)


def probed(server: Server) -> list[str]:
    """The probes' own statements since the last call (the sql probes by their text, the setting)."""
    out = [q for q in server.log if q in ("cat", "live", "setting")]
    server.log.clear()
    return out


async def test_a_re_verify_runs_again_only_what_its_inputs_say_may_have_changed(tmp_path):
    server = Server()
    svc = make(tmp_path, server)
    run = await svc.run()
    assert probed(server) == ["cat", "live", "setting"]
    assert run.reused == () and set(run.probed) == {"cat", "live", "setting", "person"}
    assert svc.results["setting"].status == "fail"
    # nothing changed: the catalog and settings results are reused, the live probe runs
    run = await svc.run(reuse=True)
    assert probed(server) == ["live"]
    assert set(run.reused) == {"cat", "setting"}
    assert svc.results["cat"].status == "pass" and svc.results["c.queries"].status == "pass"
    # the catalogs changed (their write counters moved): the catalog probe runs again and finds it
    server.rows["cat"] = ["an INVALID index"]
    server.signals["catalog_writes"] = "105"
    run = await svc.run(reuse=True)
    assert probed(server) == ["cat", "live"]
    assert svc.results["cat"].status == "fail" and svc.results["c.queries"].status == "fail"
    # a reload: the settings probe runs again and sees the new value
    server.setting = "500"
    server.signals["conf_loaded"] = "t1"
    await svc.run(reuse=True)
    assert probed(server) == ["live", "setting"]
    assert svc.results["setting"].status == "pass"
    # a change no signal saw is not seen by a re-verify; a verify asked for reuses nothing
    server.rows["cat"] = []
    await svc.run(reuse=True)
    assert probed(server) == ["live"] and svc.results["cat"].status == "fail"
    await svc.run()
    assert probed(server) == ["cat", "live", "setting"] and svc.results["cat"].status == "pass"
    # the results were recorded in the state file, reused ones with the time they were probed
    saved = load_state(svc.config.state_dir, svc.identity)
    assert saved.results["cat"]["status"] == "pass" and saved.results["setting"]["status"] == "pass"


@pytest.mark.parametrize("signals", [{"version": 140000}, {"track_counts": False}, {"catalog_writes": None}])
async def test_without_a_trustworthy_catalog_signal_the_catalog_probes_run_every_time(tmp_path, signals):
    server = Server()
    server.signals.update(signals)
    svc = make(tmp_path, server)
    await svc.run()
    probed(server)
    await svc.run(reuse=True)
    assert probed(server) == ["cat", "live"]  # the settings signal still holds


async def test_reused_results_expire_and_errors_are_never_kept(tmp_path):
    server = Server()
    clock = Clock()
    svc = make(tmp_path, server, cache=ProbeCache(max_age_s=600, clock=clock))
    await svc.run()
    probed(server)
    clock.now += 599
    await svc.run(reuse=True)
    assert probed(server) == ["live"]
    clock.now += 2  # 601 s since probed
    await svc.run(reuse=True)
    assert probed(server) == ["cat", "live", "setting"]
    server.rows["cat"] = None  # the probe fails (an error item): not kept
    await svc.run()
    assert svc.results["cat"].status == "error"
    probed(server)
    server.rows["cat"] = []
    await svc.run(reuse=True)
    assert probed(server) == ["cat", "live"] and svc.results["cat"].status == "pass"


async def test_verify_item_runs_the_item_and_every_roll_up_that_reads_it(tmp_path):
    server = Server()
    svc = make(tmp_path, server)
    with pytest.raises(StateError) as e:
        svc.set_tick("person", True)  # no run yet: the database is not known
    assert e.value.severity == "warning" and "not verified yet" in e.value.message
    await svc.run()
    assert {svc.results[i].status for i in ("person", "c.person", "c.all")} == {"manual"}
    assert svc.affected(["person"]) == {"person", "c.person", "c.all"}
    assert svc.affected(["live"]) == {"live", "c.queries"}
    svc.set_tick("person", True)
    probed(server)
    run = await svc.verify_item("person")
    assert probed(server) == [] and run.probed == ("person",)
    assert set(run.results) == {"person", "c.person", "c.all"}
    assert {svc.results[i].status for i in ("person", "c.person", "c.all")} == {"pass"}
    assert svc.results["person"].detail.startswith("ticked by ")
    assert svc.results["live"].status == "pass"  # the other results are kept
    state = load_state(svc.config.state_dir, svc.identity)
    assert state.tick("person") is not None
    svc.add_note("person", "  PR 412   raises it ")
    assert [n.text for n in load_state(svc.config.state_dir, svc.identity).notes_for("person")] == ["PR 412 raises it"]


async def test_every_run_is_announced_as_checklist_ran(tmp_path):
    server = Server()
    svc = make(tmp_path, server)
    seen: list[ChecklistRan] = []

    def broken(event):
        raise RuntimeError("a recorder's bug")

    svc.add_listener(broken)
    svc.add_listener(seen.append)
    await svc.run()
    server.rows["live"] = ["pid 42 open for 00:06:00"]
    await svc.verify_item("live")
    assert [e.checklist for e in seen] == ["fake", "fake"]
    first, second = seen
    assert [i for i, _ in first.results] == ["cat", "live", "setting", "person", "c.queries", "c.person", "c.all"]
    assert dict(first.results)["setting"] == "fail" and dict(first.results)["live"] == "pass"
    assert dict(second.results)["live"] == "fail" and dict(second.results)["c.queries"] == "fail"
    assert len(second.results) == 7  # the whole checklist, not just the items re-verified
    assert second.at >= first.at and first.at.tzinfo is not None
    assert svc.listener_errors == ["RuntimeError: a recorder's bug", "RuntimeError: a recorder's bug"]
    svc.remove_listener(seen.append)
    await svc.run(reuse=True)
    assert len(seen) == 2


async def test_runs_never_overlap(tmp_path):
    server = Server()
    svc = make(tmp_path, server)
    runs = await asyncio.gather(svc.run(), svc.run(reuse=True), svc.verify_item("person"))
    assert all(r is not None for r in runs)
    assert server.most_active == 1 and svc.runs == 3 and not svc.running
    assert server.connects == 1  # one session, kept


async def test_a_lost_target_is_one_line_and_the_next_run_connects_again(tmp_path):
    server = Server()
    svc = make(tmp_path, server)
    server.fail_next_connect = "connection refused (nothing listens on that host and port)"
    assert await svc.run() is None
    assert svc.last_error == "cannot verify: connection refused (nothing listens on that host and port)"
    assert svc.results == {} and svc.runs == 1 and not svc.running
    assert await svc.run() is not None and svc.last_error is None
    probed(server)
    # another server behind the same address (a failover): nothing kept is trusted
    svc._conn.closed = True
    server.sysid = "9999"
    await svc.run(reuse=True)
    assert probed(server) == ["cat", "live", "setting"]
    assert svc.identity.system_identifier == "9999"


async def test_canned_results_are_shown_and_never_run(tmp_path):
    from tui.checklist.state import ChecklistState, DatabaseIdentity
    from tui.model.checklist import ItemResult

    server = Server()
    st = ChecklistState(DatabaseIdentity("1", "db"))
    svc = make(tmp_path, server, canned=({"cat": ItemResult("cat", "fail", "canned", 5.0)}, st))
    assert await svc.run() is None and server.connects == 0
    view = svc.view()
    assert view.item("cat").status == "fail" and view.item("live").status == "pending" and view.checked_at == 5.0
    svc.set_tick("person", True)  # the state file of the canned identity
    assert load_state(svc.config.state_dir, st.identity).tick("person") is not None


async def test_the_view_asks_the_given_describer_for_a_fix_sql(tmp_path):
    text = CHECKLIST.replace('id = "setting"\ntitle = "A setting"\n',
                             'id = "setting"\ntitle = "A setting"\nfix = { name = "slow_query_log", params = { value_ms = 1000 } }\n')
    server = Server()
    svc = make(tmp_path, server, describe_fix=lambda name, params: f"-- {name} {params['value_ms']}")
    svc.checklist = parse_checklist(text)
    assert svc.view().item("setting").fix_sql == "-- slow_query_log 1000"
    svc.describe_fix = None
    assert svc.view().item("setting").fix_sql is None
