-- pgpreflight: top tables by size. Candidates ranked from the catalog and statistics (no file opened),
-- then measured: the full breakdown for at most 100, the 50 largest returned. Names quoted by the server.
-- Size functions take an AccessShareLock: a table with an AccessExclusiveLock held or awaited
-- (a migration) would stall this query, so such tables are sized from pg_class estimates instead.
WITH excl AS (
  SELECT DISTINCT l.relation
    FROM pg_locks l
   WHERE l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock' AND l.database = (
         SELECT oid FROM pg_database WHERE datname = current_database())
), cand AS (
  SELECT c.oid, c.relnamespace, c.relname, c.reltuples, c.reltoastrelid, c.relpages,
         (c.oid IN (SELECT relation FROM excl) OR c.reltoastrelid IN (SELECT relation FROM excl)) AS locked
    FROM pg_class c
   WHERE c.relkind IN ('r', 'm', 'p')
     AND c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace,
                                'pg_toast'::regnamespace)
), ranked AS (
  -- candidates from the catalog and the statistics only (no file is opened): the 50 largest by
  -- heap relpages (as of the last VACUUM/ANALYZE) and the 50 with the most live + dead tuples
  -- (counted at commit: catches a table loaded since its last ANALYZE). TOAST pages are left out of
  -- the ranking: looking them up cost 60-90 ms of server time at 20,000 tables.
  (SELECT cand.* FROM cand
    ORDER BY cand.relpages DESC
    LIMIT 50)
  UNION
  (SELECT cand.* FROM cand
    ORDER BY pg_stat_get_live_tuples(cand.oid) + pg_stat_get_dead_tuples(cand.oid) DESC
    LIMIT 50)
), sized AS (
  SELECT r.*,
         CASE WHEN r.locked THEN NULL ELSE pg_relation_size(r.oid) END AS table_bytes,
         CASE WHEN r.locked THEN NULL ELSE pg_indexes_size(r.oid) END AS index_bytes,
         CASE WHEN r.locked OR r.reltoastrelid = 0 THEN 0 ELSE pg_total_relation_size(r.reltoastrelid) END AS toast_bytes,
         CASE WHEN r.locked THEN r.relpages::bigint * current_setting('block_size')::int
              ELSE pg_total_relation_size(r.oid) END AS total_bytes
    FROM ranked r
)
SELECT n.nspname AS schema, s.relname AS name,
       quote_ident(n.nspname) || '.' || quote_ident(s.relname) AS qualified_name,
       s.total_bytes, s.table_bytes, s.index_bytes, s.toast_bytes, s.locked,
       CASE WHEN s.reltuples >= 0 THEN s.reltuples::bigint ELSE pg_stat_get_live_tuples(s.oid) END AS est_rows,
       -- the functions behind pg_stat_all_tables, for these rows only (the view computes every table)
       pg_stat_get_numscans(s.oid) AS seq_scan,
       (SELECT sum(pg_stat_get_numscans(i.indexrelid))::bigint FROM pg_index i WHERE i.indrelid = s.oid) AS idx_scan,
       pg_stat_get_dead_tuples(s.oid) AS dead_rows,
       pg_stat_get_last_autovacuum_time(s.oid) AS last_autovacuum
  FROM sized s
  JOIN pg_namespace n ON n.oid = s.relnamespace
 ORDER BY s.total_bytes DESC, schema, name
 LIMIT 50
