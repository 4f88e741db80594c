-- pgpreflight: non-idle client sessions, oldest first. $1 = row limit (no parameter guards an expression).
-- pg_blocking_pids only for sessions waiting on a lock; count(*) OVER () is the total before LIMIT.
-- Without pg_read_all_stats, other users' sessions show backend_type NULL: a datname tells a client backend.
SELECT a.pid,
       a.datname                                          AS database,
       a.usename                                          AS "user",
       coalesce(a.application_name, '')                   AS application_name,
       host(a.client_addr)                                AS client_addr,
       a.state,
       a.wait_event_type,
       a.wait_event,
       CASE WHEN a.wait_event_type = 'Lock' THEN pg_blocking_pids(a.pid) ELSE '{}'::int[] END AS blocked_by,
       extract(epoch FROM now() - a.xact_start)::float8   AS xact_age_s,
       extract(epoch FROM now() - a.query_start)::float8  AS query_age_s,
       extract(epoch FROM now() - a.state_change)::float8 AS state_age_s,
       left(a.query, 4000)                                AS query,
       count(*) OVER ()::int                              AS total
  FROM pg_stat_activity a
 WHERE (a.backend_type = 'client backend' OR (a.backend_type IS NULL AND a.datname IS NOT NULL))
   AND a.pid <> pg_backend_pid()
   AND coalesce(a.application_name, '') NOT LIKE 'pgpreflight%'
   AND a.state IS DISTINCT FROM 'idle'
 ORDER BY coalesce(a.xact_start, a.query_start, a.backend_start), a.pid
 LIMIT $1
