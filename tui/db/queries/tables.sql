-- pgpreflight: top tables by size. Ranked cheaply first (main fork of heap and TOAST, no index walk),
-- then the full breakdown only for the top 50. Names quoted by the server.
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
  SELECT cand.*
    FROM cand
   ORDER BY CASE WHEN locked THEN relpages::bigint * current_setting('block_size')::int
                 ELSE pg_relation_size(oid)
                      + CASE WHEN reltoastrelid <> 0 THEN pg_relation_size(reltoastrelid) ELSE 0 END
            END DESC
   LIMIT 50
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
       CASE WHEN s.reltuples >= 0 THEN s.reltuples::bigint ELSE st.n_live_tup END AS est_rows,
       st.seq_scan, st.idx_scan, st.n_dead_tup AS dead_rows, st.last_autovacuum
  FROM sized s
  JOIN pg_namespace n ON n.oid = s.relnamespace
  LEFT JOIN pg_stat_all_tables st ON st.relid = s.oid
 ORDER BY s.total_bytes DESC, schema, name
