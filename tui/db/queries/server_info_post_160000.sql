-- pgpreflight: Header figures for 16+: reserved_connections (pg_use_reserved_connections) counts too.
SELECT current_setting('server_version')                  AS version,
       current_setting('server_version_num')::int         AS version_num,
       pg_postmaster_start_time()                         AS started_at,
       now()                                              AS now,
       current_database()                                 AS database,
       (SELECT count(*) FROM pg_stat_get_activity(NULL) s   -- the function: the view's joins cost
         WHERE s.backend_type = 'client backend'
            OR (s.backend_type IS NULL AND coalesce(s.datid, 0) <> 0)) AS connections,
       current_setting('max_connections')::int            AS max_connections,
       current_setting('superuser_reserved_connections')::int
         + current_setting('reserved_connections')::int   AS reserved_connections,
       d.xact_commit + d.xact_rollback                    AS xacts,
       d.blks_hit                                         AS blks_hit,
       d.blks_read                                        AS blks_read,
       pg_is_in_recovery()                                AS in_recovery
  FROM pg_stat_database d
 WHERE d.datname = current_database()
