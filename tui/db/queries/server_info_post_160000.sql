-- pgpreflight: Header figures for 16+: reserved_connections (pg_use_reserved_connections) counts too.
SELECT current_setting('server_version')                  AS version,
       current_setting('server_version_num')::int         AS version_num,
       pg_postmaster_start_time()                         AS started_at,
       now()                                              AS now,
       current_database()                                 AS database,
       a.connections,
       a.active, a.idle, a.idle_in_xact, a.idle_in_xact_aborted, a.other_state,
       a.lock_waiting, a.oldest_xact_s,
       current_setting('max_connections')::int            AS max_connections,
       current_setting('superuser_reserved_connections')::int
         + current_setting('reserved_connections')::int   AS reserved_connections,
       d.xact_commit + d.xact_rollback                    AS xacts,
       d.xact_commit                                      AS commits,
       d.xact_rollback                                    AS rollbacks,
       d.blks_hit                                         AS blks_hit,
       d.blks_read                                        AS blks_read,
       pg_is_in_recovery()                                AS in_recovery
  FROM pg_stat_database d
 CROSS JOIN (
  -- one scan of the activity array (the function: the view's joins cost) for the count, the states, the
  -- lock waits and the oldest transaction. Every client backend counts, ours too (the poll's own session is
  -- active while it runs); the oldest transaction leaves out the poll's own (it is this statement's).
  -- Without pg_read_all_stats other users' sessions have backend_type and state NULL ("other"): a database
  -- tells a client backend.
  SELECT count(*)                                                           AS connections,
         count(*) FILTER (WHERE s.state = 'active')                         AS active,
         count(*) FILTER (WHERE s.state = 'idle')                           AS idle,
         count(*) FILTER (WHERE s.state = 'idle in transaction')            AS idle_in_xact,
         count(*) FILTER (WHERE s.state = 'idle in transaction (aborted)')  AS idle_in_xact_aborted,
         count(*) FILTER (WHERE s.state IS NULL OR s.state NOT IN
                          ('active', 'idle', 'idle in transaction', 'idle in transaction (aborted)')) AS other_state,
         count(*) FILTER (WHERE s.wait_event_type = 'Lock')                 AS lock_waiting,
         extract(epoch FROM now() - min(s.xact_start) FILTER (WHERE s.pid <> pg_backend_pid()))::float8
                                                                            AS oldest_xact_s
    FROM pg_stat_get_activity(NULL) s
   WHERE s.backend_type = 'client backend'
      OR (s.backend_type IS NULL AND coalesce(s.datid, 0) <> 0)
 ) a
 WHERE d.datname = current_database()
