-- pgpreflight: connection counts by state, database, application and user, aggregated on the server.
-- Client backends only, never the tool's own sessions. No parameters.
SELECT GROUPING(a.state) = 0                 AS is_state,
       GROUPING(a.datname) = 0               AS is_database,
       GROUPING(a.application_name) = 0      AS is_application,
       GROUPING(a.usename) = 0               AS is_user,
       coalesce(a.state, '')                 AS state,
       coalesce(a.datname, '')               AS database,
       coalesce(a.application_name, '')      AS application,
       coalesce(a.usename, '')               AS "user",
       count(*)::int                         AS n
  FROM pg_stat_activity a
 WHERE (a.backend_type = 'client backend' OR (a.backend_type IS NULL AND a.datname IS NOT NULL))
   AND a.pid <> pg_backend_pid()
   AND coalesce(a.application_name, '') NOT LIKE 'pgpreflight%'
 GROUP BY GROUPING SETS ((a.state), (a.datname), (a.application_name), (a.usename), ())
