-- pgpreflight: one session's locks for its detail ($1 = pid), in one round trip: every pg_locks row of it
-- (kind 'l': granted = held, else waited for; its own virtual transaction id left out), who blocks it
-- (kind 'b', pg_blocking_pids), whom it blocks (kind 'w': sessions waiting on a lock whose pg_blocking_pids
-- name it) and whether it still exists (kind 'e'). Relations of another database show as their oid.
SELECT 'l' AS kind, l.locktype, l.mode, l.granted,
       CASE WHEN l.relation IS NOT NULL THEN
              CASE WHEN l.locktype = 'tuple' THEN 'tuple (' || l.page || ',' || l.tuple || ') of ' ELSE '' END
              || CASE WHEN l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                      THEN l.relation::regclass::text ELSE 'relation ' || l.relation END
            WHEN l.locktype = 'transactionid' THEN 'transaction ' || l.transactionid
            WHEN l.locktype = 'virtualxid' THEN 'virtual transaction ' || l.virtualxid
            WHEN l.locktype = 'advisory' THEN 'advisory ' || l.classid || ':' || l.objid
            ELSE l.locktype || coalesce(' ' || l.objid, '') END AS target,
       NULL::int[] AS pids
  FROM pg_locks l
 WHERE l.pid = $1 AND NOT (l.locktype = 'virtualxid' AND l.granted AND l.mode = 'ExclusiveLock')
UNION ALL
SELECT 'b', NULL, NULL, NULL, NULL, pg_blocking_pids($1)
UNION ALL
SELECT 'w', NULL, NULL, NULL, NULL,
       array(SELECT a.pid FROM pg_stat_activity a
              WHERE a.wait_event_type = 'Lock' AND $1 = ANY (pg_blocking_pids(a.pid)) ORDER BY a.pid)
UNION ALL
SELECT 'e', NULL, NULL, EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1), NULL, NULL
