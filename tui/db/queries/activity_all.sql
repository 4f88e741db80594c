-- pgpreflight: connections pane in one scan of pg_stat_get_activity, idle sessions listed too:
-- application and user (kind 'c', aggregated on the server) and the non-idle sessions, oldest first
-- (kind 's', in the order of column ord, $1 = row limit; "total" counts what the LIMIT cut). Names are looked up only for the rows
-- returned. Never the tool's own sessions, except (kind 'o') one that blocks a listed session: a fix's ALTER
-- waiting in the lock queue, so that the blocking chains name it instead of "(not listed)". Without pg_read_all_stats other users' sessions have
-- backend_type NULL: a database tells a client backend.
WITH s0 AS MATERIALIZED (
  SELECT s.pid, s.datid, s.usesysid, coalesce(s.application_name, '') AS application_name, s.client_addr,
         s.state, s.wait_event_type, s.wait_event, s.xact_start, s.query_start, s.state_change, s.backend_start,
         s.query, coalesce(s.application_name, '') NOT LIKE 'pgpreflight%' AS theirs
    FROM pg_stat_get_activity(NULL) s
   WHERE (s.backend_type = 'client backend' OR (s.backend_type IS NULL AND coalesce(s.datid, 0) <> 0))
     AND s.pid <> pg_backend_pid()
), a AS NOT MATERIALIZED (
  SELECT * FROM s0 WHERE theirs
), c AS (
  SELECT GROUPING(state) = 0 AS is_state, GROUPING(datid) = 0 AS is_database,
         GROUPING(application_name) = 0 AS is_application, GROUPING(usesysid) = 0 AS is_user,
         state, datid, application_name, usesysid, count(*)::int AS n
    FROM a
   GROUP BY GROUPING SETS ((state), (datid), (application_name), (usesysid), ())
), l AS (
  SELECT a.*, count(*) OVER ()::int AS total,
         row_number() OVER (ORDER BY coalesce(a.xact_start, a.query_start, a.backend_start), a.pid) AS ord,
         CASE WHEN a.wait_event_type = 'Lock' THEN pg_blocking_pids(a.pid) ELSE '{}'::int[] END AS blocked_by
    FROM a
   ORDER BY coalesce(a.xact_start, a.query_start, a.backend_start), a.pid
   LIMIT $1
), o AS (
  SELECT s0.*, NULL::int AS total, NULL::bigint AS ord,
         CASE WHEN s0.wait_event_type = 'Lock' THEN pg_blocking_pids(s0.pid) ELSE '{}'::int[] END AS blocked_by
    FROM s0
   WHERE NOT s0.theirs AND s0.pid IN (SELECT unnest(l.blocked_by) FROM l WHERE l.wait_event_type = 'Lock')
)
SELECT 'c' AS kind, c.is_state, c.is_database, c.is_application, c.is_user,
       coalesce(c.state, '') AS state, coalesce(d.datname, '') AS database,
       coalesce(c.application_name, '') AS application, coalesce(r.rolname, '') AS "user", c.n,
       NULL::int AS pid, NULL::text AS client_addr, NULL::text AS wait_event_type, NULL::text AS wait_event,
       NULL::int[] AS blocked_by, NULL::float8 AS xact_age_s, NULL::float8 AS query_age_s,
       NULL::float8 AS state_age_s, NULL::text AS query, NULL::int AS total, NULL::bigint AS ord,
       NULL::float8 AS backend_age_s
  FROM c
  LEFT JOIN pg_database d ON d.oid = c.datid
  LEFT JOIN pg_roles r ON r.oid = c.usesysid
UNION ALL
SELECT 's', NULL, NULL, NULL, NULL, l.state, d.datname, l.application_name, r.rolname, NULL,
       l.pid, host(l.client_addr), l.wait_event_type, l.wait_event, l.blocked_by,
       extract(epoch FROM now() - l.xact_start)::float8,
       extract(epoch FROM now() - l.query_start)::float8,
       extract(epoch FROM now() - l.state_change)::float8,
       left(l.query, 4000), l.total, l.ord,
       extract(epoch FROM now() - l.backend_start)::float8
  FROM l
  LEFT JOIN pg_database d ON d.oid = l.datid
  LEFT JOIN pg_roles r ON r.oid = l.usesysid
UNION ALL
SELECT 'o', NULL, NULL, NULL, NULL, o.state, d.datname, o.application_name, r.rolname, NULL,
       o.pid, host(o.client_addr), o.wait_event_type, o.wait_event, o.blocked_by,
       extract(epoch FROM now() - o.xact_start)::float8,
       extract(epoch FROM now() - o.query_start)::float8,
       extract(epoch FROM now() - o.state_change)::float8,
       left(o.query, 4000), o.total, o.ord,
       extract(epoch FROM now() - o.backend_start)::float8
  FROM o
  LEFT JOIN pg_database d ON d.oid = o.datid
  LEFT JOIN pg_roles r ON r.oid = o.usesysid
