"""Plain-text rendering of a Snapshot (`pgpreflight snapshot --format text`). Pure Python."""
from __future__ import annotations

from tui.model import format as fmt
from tui.model.snapshot import Snapshot


def _counts(pairs) -> str:
    return ", ".join(f"{k} {v}" for k, v in pairs) or "—"


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def render_text(snap: Snapshot, width: int = 120) -> str:
    out: list[str] = []
    s = snap.server
    out.append(f"pgpreflight snapshot of {snap.target} at {snap.taken_at.isoformat(timespec='seconds')}")
    if s is not None:
        out.append(f"server: PostgreSQL {s.version.split()[0]} ({s.version_num}), up {fmt.duration(s.uptime_s)}, "
                   f"database {s.database} {'≈' if s.database_bytes_estimated else ''}{fmt.size(s.database_bytes)}, cache hit {fmt.ratio(s.cache_hit_ratio)}"
                   f"{', STANDBY' if s.in_recovery else ''}")
    c = snap.connections
    if c is not None:
        out.append("")
        out.append(f"connections: {c.total} of max {c.max_connections} (not counting pgpreflight's own)")
        out.append(f"  by state: {_counts(c.by_state)}")
        out.append(f"  by database: {_counts(c.by_database)}")
        out.append(f"  by application: {_counts(c.by_application)}")
        out.append(f"  by user: {_counts(c.by_user)}")
        out.append(f"  {'pid':>7} {'user':<12} {'database':<12} {'state':<20} {'xact':>7} {'query':>7} "
                   f"{'blocked by':<10} query")
        for x in c.sessions:
            out.append(
                f"  {x.pid:>7} {_cut(x.user or '', 12):<12} {_cut(x.database or '', 12):<12} "
                f"{_cut(x.state or '?', 20):<20} {fmt.duration(x.xact_age_s):>7} {fmt.duration(x.query_age_s):>7} "
                f"{_cut(','.join(map(str, x.blocked_by)), 10):<10} {_cut(x.query, max(20, width - 90))}")
        if c.sessions_omitted:
            out.append(f"  … and {c.sessions_omitted} more sessions not listed")
        chains = c.blocking_chains()
        if chains:
            out.append("  blocking chains:")
            by_pid = c.by_pid()  # our own blockers too: "pgpreflight fix: ALTER TABLE …"
            for depth, pid in chains:
                x = by_pid.get(pid)
                what = x.chain_label(60) if x else "(not listed)"
                out.append(f"    {'  ' * depth}{'└ ' if depth else ''}{pid} {what}")
    q = snap.slow_queries
    if q is not None:
        out.append("")
        out.append(f"slow queries (from {q.source}):")
        if q.message:
            out.append(f"  {q.message}")
        if q.source == "pg_stat_statements":
            out.append(f"  {'mean ms':>10} {'total ms':>12} {'calls':>9} {'rows':>10} {'share':>6} {'hit':>6}  query")
            for st in q.statements[:20]:
                out.append(f"  {st.mean_ms:>10.2f} {st.total_ms:>12.1f} {st.calls:>9} {st.rows:>10} "
                           f"{fmt.ratio(st.share):>6} {fmt.ratio(st.cache_hit_ratio):>6}  {_cut(st.query, max(20, width - 64))}")
        else:
            for st in q.statements[:20]:
                out.append(f"  pid {st.pid:>7} running {fmt.duration(st.age_s):>7}  {_cut(st.query, max(20, width - 30))}")
            if not q.statements:
                out.append("  no statement is running")
    t = snap.tables
    if t is not None:
        out.append("")
        out.append(f"tables (database {fmt.size(t.database_bytes)}):")
        out.append(f"  {'total':>10} {'table':>10} {'index':>10} {'toast':>10} {'est rows':>12} {'seq':>8} {'idx':>8} "
                   f"{'dead':>8}  name")
        for x in t.tables[:20]:
            flag = "  SEQ-SCANNED" if x.mostly_seq_scanned else ""
            if x.partition_count is not None:
                flag += f"  (partitioned: {x.partition_count} partitions)"
            if x.total_bytes is None:
                flag += f"  size {x.size_text}"
            out.append(f"  {fmt.size(x.total_bytes):>10} {fmt.size(x.table_bytes):>10} {fmt.size(x.index_bytes):>10} "
                       f"{fmt.size(x.toast_bytes):>10} {x.est_rows if x.est_rows is not None else '—':>12} "
                       f"{x.seq_scan if x.seq_scan is not None else '—':>8} {x.idx_scan if x.idx_scan is not None else '—':>8} "
                       f"{x.dead_rows if x.dead_rows is not None else '—':>8}  {x.qualified_name}{flag}")
    out.append("")
    h = snap.host
    if h is None:
        out.append(f"host: {snap.host_message or 'not measured'}")
    else:
        load = " ".join(f"{x:.2f}" for x in h.load) if h.load else "—"
        out.append(f"host: cpu {h.cpu_percent:.0f}% of {h.cpu_count}, load {load}, memory "
                   f"{fmt.size(h.mem_total - h.mem_available)} of {fmt.size(h.mem_total)} ({h.mem_percent:.0f}%)")
        for d in h.disks:
            out.append(f"  {d.label} {d.path}: {fmt.size(d.used)} used, {fmt.size(d.free)} free ({d.percent:.0f}%)")
        for n in h.notes:
            out.append(f"  {n}")
    for n in snap.notices:
        out.append(f"notice: {n}")
    # names from the database (roles, tables, applications) may carry escapes: nothing raw reaches a terminal
    return "\n".join(fmt.clean_text(line, 100_000) for line in out) + "\n"
