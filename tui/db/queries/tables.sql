-- pgpreflight: top tables by size, and the database size, from one pass over pg_class.
-- Candidates ranked from the catalog and statistics (no file opened), then measured: the full
-- breakdown for at most 100, the 50 largest returned. Names quoted by the server.
-- Size functions take an AccessShareLock: a table with an AccessExclusiveLock held or awaited
-- (a migration) would stall this query, so such tables are sized from pg_class estimates instead.
-- No parameters: every CASE below is decided at run time, never hidden behind a generic plan.
WITH excl AS (
  SELECT DISTINCT l.relation
    FROM pg_locks l
   WHERE l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock' AND l.database = (
         SELECT oid FROM pg_database WHERE datname = current_database())
), scan AS MATERIALIZED (
  -- The only pass over pg_class (80,000 rows at 20,000 tables): the relation count and page total
  -- for the database size (a pass of its own cost 12-17 ms of server time), and every candidate
  -- table as one int8, relpages << 32 | oid, sorted on the way: one array, one FILTER, ranked by
  -- heap relpages (as of the last VACUUM/ANALYZE), ties by oid.
  SELECT count(*) AS relations, sum(c.relpages)::bigint AS pages,
         array_agg((c.relpages::int8 << 32) | c.oid::int8 ORDER BY (c.relpages::int8 << 32) | c.oid::int8 DESC)
           FILTER (WHERE c.relkind IN ('r', 'm', 'p')
                     AND c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace,
                                                'pg_toast'::regnamespace)) AS tables
    FROM pg_class c
), picked AS (
  -- the 50 largest by relpages, and the 50 with the most live + dead tuples (counted at commit:
  -- catches a table loaded since its last ANALYZE), ties in the same order as the first list so
  -- that equal tables (empty ones) give the same candidates, not 50 more. TOAST pages are left
  -- out of the ranking: looking them up cost 60-90 ms of server time at 20,000 tables.
  (SELECT (k & 4294967295)::oid AS oid FROM scan, unnest(scan.tables[1:50]) AS k)
  UNION
  (SELECT t.oid FROM scan, unnest(scan.tables) AS k, LATERAL (SELECT (k & 4294967295)::oid AS oid) t
    ORDER BY pg_stat_get_live_tuples(t.oid) + pg_stat_get_dead_tuples(t.oid) DESC, k DESC
    LIMIT 50)
), ranked AS MATERIALIZED (
  -- materialized: "locked" is computed once per row, not once per reference below
  SELECT c.oid, c.relnamespace, c.relname, c.reltuples, c.reltoastrelid, c.relpages,
         (c.oid IN (SELECT relation FROM excl) OR c.reltoastrelid IN (SELECT relation FROM excl)) AS locked
    FROM picked p
    JOIN pg_class c ON c.oid = p.oid
), sized AS MATERIALIZED (
  -- each part measured once: the total is their sum (what pg_total_relation_size adds up, without
  -- measuring the indexes and the TOAST table a second time)
  SELECT r.oid, r.relnamespace, r.relname, r.reltuples, r.relpages, r.locked,
         CASE WHEN r.locked THEN NULL ELSE pg_relation_size(r.oid) END AS table_bytes,
         CASE WHEN r.locked THEN NULL
              ELSE pg_relation_size(r.oid, 'fsm') + pg_relation_size(r.oid, 'vm') + pg_relation_size(r.oid, 'init')
         END AS other_forks_bytes,
         CASE WHEN r.locked THEN NULL ELSE pg_indexes_size(r.oid) END AS index_bytes,
         CASE WHEN r.locked OR r.reltoastrelid = 0 THEN 0 ELSE pg_total_relation_size(r.reltoastrelid) END AS toast_bytes
    FROM ranked r
)
SELECT n.nspname AS schema, s.relname AS name,
       quote_ident(n.nspname) || '.' || quote_ident(s.relname) AS qualified_name,
       CASE WHEN s.locked THEN s.relpages::bigint * current_setting('block_size')::int
            ELSE s.table_bytes + s.other_forks_bytes + s.index_bytes + s.toast_bytes END AS total_bytes,
       s.table_bytes, s.index_bytes, s.toast_bytes, s.locked,
       CASE WHEN s.reltuples >= 0 THEN s.reltuples::bigint ELSE pg_stat_get_live_tuples(s.oid) END AS est_rows,
       -- the functions behind pg_stat_all_tables, for these rows only (the view computes every table)
       pg_stat_get_numscans(s.oid) AS seq_scan,
       (SELECT sum(pg_stat_get_numscans(i.indexrelid))::bigint FROM pg_index i WHERE i.indrelid = s.oid) AS idx_scan,
       pg_stat_get_dead_tuples(s.oid) AS dead_rows,
       pg_stat_get_last_autovacuum_time(s.oid) AS last_autovacuum,
       -- as database_size.sql: pg_database_size() stats every file (~300 ms at 20,000 tables), so
       -- past 5,000 relations the size comes from pg_class pages
       (SELECT CASE WHEN scan.relations <= 5000 THEN pg_database_size(current_database())
                    ELSE scan.pages * current_setting('block_size')::bigint END
          FROM scan) AS database_bytes
  FROM sized s
  JOIN pg_namespace n ON n.oid = s.relnamespace
 ORDER BY total_bytes DESC, schema, name
 LIMIT 50
