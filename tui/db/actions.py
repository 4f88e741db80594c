"""Cancel or terminate sessions: the only writes of the live panes. Every attempt,
refusal included, goes to the audit log. No textual.

Until the fixes machinery (tui/fixes) lands, this is the confirmed-and-logged path."""
from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from tui import audit
from tui.config import Config, TargetError
from tui.db.connect import connect

FUNCTIONS = {"cancel": "pg_cancel_backend", "terminate": "pg_terminate_backend"}


@dataclass(frozen=True)
class SignalResult:
    action: str
    pids: tuple[int, ...]
    signalled: tuple[int, ...]  # the server said true
    failed: tuple[tuple[int, str], ...]  # pid, why
    refused: str = ""  # read-only, or could not connect

    @property
    def summary(self) -> str:
        if self.refused:
            return self.refused
        verb = "cancelled" if self.action == "cancel" else "terminated"
        parts = []
        if self.signalled:
            parts.append(f"{verb} {', '.join(map(str, self.signalled))}")
        for pid, why in self.failed:
            parts.append(f"{pid}: {why}")
        return "; ".join(parts) or "nothing to do"


def statements_for(action: str, pids) -> list[str]:
    fn = FUNCTIONS[action]
    return [f"SELECT {fn}({int(p)})" for p in pids]


async def signal_backends(cfg: Config, action: str, pids) -> SignalResult:
    """pg_cancel_backend / pg_terminate_backend on each pid, unless read-only. Audited."""
    if action not in FUNCTIONS:
        raise ValueError(f"unknown action {action!r}")
    pids = tuple(int(p) for p in pids)
    stmts = statements_for(action, pids)
    target = cfg.target.display
    if cfg.read_only:
        res = SignalResult(action, pids, (), (), refused=f"read-only: refused to {action} {', '.join(map(str, pids))}")
        audit.record(cfg.state_dir, target, f"{action} backend", stmts, "refused: read-only")
        return res
    try:
        conn = await connect(cfg.target, timeout=cfg.connect_timeout, role="action",
                             statement_timeout_ms=cfg.statement_timeout_ms)
    except TargetError as e:
        audit.record(cfg.state_dir, target, f"{action} backend", stmts, f"failed: {e.reason}")
        return SignalResult(action, pids, (), (), refused=f"could not connect: {e.reason}")
    ok: list[int] = []
    failed: list[tuple[int, str]] = []
    try:
        fn = FUNCTIONS[action]
        for pid in pids:
            try:
                if await conn.fetchval(f"-- pgpreflight\nSELECT {fn}($1)", pid):
                    ok.append(pid)
                else:
                    failed.append((pid, "no such session (it may have ended)"))
            except asyncpg.PostgresError as e:
                failed.append((pid, str(e).splitlines()[0]))
    finally:
        await conn.close()
    res = SignalResult(action, pids, tuple(ok), tuple(failed))
    outcome = "ok" if not failed else ("partial: " if ok else "failed: ") + "; ".join(f"{p}: {w}" for p, w in failed)
    audit.record(cfg.state_dir, target, f"{action} backend", stmts, outcome)
    return res
