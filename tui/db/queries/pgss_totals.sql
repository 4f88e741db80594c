-- pgpreflight: the header's statement totals from pg_stat_statements (PostgreSQL 12: total_time), for the
-- Timeline's latency graph: calls and time of this database's statements, read WITHOUT query texts
-- (pg_stat_statements(false) does not read the texts file). {pgss} is the extension's schema, quoted by the
-- server. pgpreflight's own statements are left out by queryid: $1 the ids left out of the previous totals
-- (so that this interval's delta compares like with like), $2 those known now (tui/db/queries/pgss_own.sql).
-- Other users' statements have a NULL queryid without pg_read_all_stats: they count.
SELECT count(*)::int AS entries,
       coalesce(sum(p.calls) FILTER (WHERE p.queryid IS NULL OR p.queryid <> ALL($1::bigint[])), 0)::bigint AS calls_prev,
       coalesce(sum(p.total_time) FILTER (WHERE p.queryid IS NULL OR p.queryid <> ALL($1::bigint[])), 0)::float8 AS ms_prev,
       coalesce(sum(p.calls) FILTER (WHERE p.queryid IS NULL OR p.queryid <> ALL($2::bigint[])), 0)::bigint AS calls,
       coalesce(sum(p.total_time) FILTER (WHERE p.queryid IS NULL OR p.queryid <> ALL($2::bigint[])), 0)::float8 AS ms
  FROM {pgss}.pg_stat_statements(false) p
 WHERE p.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
