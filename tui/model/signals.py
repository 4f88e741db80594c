"""What a cancel or terminate did, told from pg_stat_activity before and after, never assumed. Pure Python."""
from __future__ import annotations

from tui.model.snapshot import SessionState


def cancel_refusal(sessions) -> str | None:
    """One line when cancel would do nothing: a session that runs no query (idle, idle in transaction)
    has nothing to cancel, and only terminate ends it. None when every session runs a query."""
    idle = [s for s in sessions if s.is_idle or s.is_idle_in_xact]
    if not idle:
        return None
    named = ", ".join(f"{s.pid} is {s.state}" for s in idle[:3]) + (f" (+{len(idle) - 3})" if len(idle) > 3 else "")
    return f"cancel does nothing here: {named}, no query runs to cancel; K terminates the session"


def settled(action: str, before: dict[int, SessionState], after: dict[int, SessionState]) -> bool:
    """True once every pid shows the signal's effect (a terminated backend takes a moment to go)."""
    return all(_effect(action, before.get(p), after.get(p)) is not None for p in before)


def _effect(action: str, was: SessionState | None, now: SessionState | None) -> str | None:
    """What happened to one pid, or None if nothing yet."""
    if now is None or (was is not None and now.backend_start != was.backend_start):
        return "ended"
    if action == "cancel" and was is not None and (now.query_start != was.query_start or now.state != "active"):
        return "cancelled"
    return None


def outcome(action: str, pids, before: dict[int, SessionState], after: dict[int, SessionState]) -> tuple[str, bool]:
    """The one line the user reads ("terminated 5026", "5026 is still idle in transaction") and whether
    every pid shows the effect asked for."""
    done, ended, still = [], [], []
    for p in pids:
        was, now = before.get(p), after.get(p)
        if was is None:
            ended.append(p)  # gone before the signal was sent
            continue
        eff = _effect(action, was, now)
        if eff == "ended" and action == "terminate":
            done.append(p)
        elif eff == "ended":
            ended.append(p)
        elif eff == "cancelled":
            done.append((p, now.state))
        else:
            still.append(f"{p} is still {now.state or 'there'}")
    parts = []
    if done and action == "terminate":
        parts.append("terminated " + ", ".join(map(str, done)))
    elif done:
        parts.append("cancelled " + ", ".join(f"{p} (now {st or 'gone'})" for p, st in done))
    if ended:
        parts.append(", ".join(map(str, ended)) + (" had ended" if action == "terminate" and not done else " ended"))
    parts.extend(still)
    return "; ".join(parts) or f"{action}: nothing to do", not still

