-- pgpreflight: fallback when pg_stat_statements is missing: active statements, longest-running first.
SELECT a.pid, a.datname AS database, a.usename AS "user", left(a.query, 8000) AS query,
       extract(epoch FROM now() - a.query_start)::float8 AS age_s
  FROM pg_stat_activity a
 WHERE (a.backend_type = 'client backend' OR (a.backend_type IS NULL AND a.datname IS NOT NULL))
   AND a.pid <> pg_backend_pid()
   AND coalesce(a.application_name, '') NOT LIKE 'pgpreflight%'
   AND a.state = 'active'
 ORDER BY a.query_start
 LIMIT 50
