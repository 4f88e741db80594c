-- pgpreflight: top tables by size, and the database size, from one pass over pg_class.
-- Candidates ranked from the catalog and statistics (no file opened), then measured: the full
-- breakdown for at most 100, the 50 largest returned. Names quoted by the server.
-- Size functions take an AccessShareLock: a table with an AccessExclusiveLock held or awaited
-- (a migration) would stall this query, so such tables are sized from pg_class estimates instead.
-- A locked table's size is not measured: total_bytes is NULL (the poller shows the last measured one, with
-- its age, or "unknown (locked by pid N)"), and sort_bytes, the pg_class estimate, only places it.
-- A partitioned table is the sum of its leaf partitions (pg_partition_tree), with their count and the
-- partitions themselves as JSON; the partitions are not listed as tables of their own.
-- No parameters: every CASE below is decided at run time, never hidden behind a generic plan.
WITH excl AS (
  SELECT l.relation, min(l.pid) FILTER (WHERE l.granted) AS holder, min(l.pid) AS any_pid
    FROM pg_locks l
   WHERE l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock' AND l.database = (
         SELECT oid FROM pg_database WHERE datname = current_database())
   GROUP BY l.relation
), scan AS MATERIALIZED (
  -- The only pass over pg_class (80,000 rows at 20,000 tables): the relation count and page total
  -- for the database size (a pass of its own cost 12-17 ms of server time), and every candidate
  -- table as one int8, relpages << 32 | oid, sorted on the way: one array, one FILTER, ranked by
  -- heap relpages (as of the last VACUUM/ANALYZE), ties by oid.
  SELECT count(*) AS relations, sum(c.relpages)::bigint AS pages,
         array_agg((c.relpages::int8 << 32) | c.oid::int8 ORDER BY (c.relpages::int8 << 32) | c.oid::int8 DESC)
           FILTER (WHERE c.relkind IN ('r', 'm') AND NOT c.relispartition
                     AND c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace,
                                                'pg_toast'::regnamespace)) AS tables,
         -- partitioned tables have no pages of their own: every top-level one is a candidate
         (array_agg(c.oid ORDER BY c.oid) FILTER (WHERE c.relkind = 'p' AND NOT c.relispartition))[1:50] AS parents
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
  UNION
  (SELECT unnest(scan.parents) FROM scan)
), leaves AS MATERIALIZED (
  -- the leaf partitions of the partitioned candidates, each with its own lock state
  SELECT p.oid AS parent, t.relid AS oid, lc.relname, lc.relnamespace, lc.reltuples, lc.reltoastrelid, lc.relpages,
         (t.relid IN (SELECT relation FROM excl) OR lc.reltoastrelid IN (SELECT relation FROM excl)) AS locked
    FROM picked p
    JOIN pg_class pc ON pc.oid = p.oid AND pc.relkind = 'p'
    CROSS JOIN LATERAL pg_partition_tree(p.oid) t
    JOIN pg_class lc ON lc.oid = t.relid
   WHERE t.isleaf
), leaf_sized AS MATERIALIZED (
  SELECT l.*,
         CASE WHEN l.locked THEN NULL ELSE pg_total_relation_size(l.oid) END AS total_bytes,
         CASE WHEN l.locked THEN NULL ELSE pg_relation_size(l.oid) END AS table_bytes,
         CASE WHEN l.locked THEN NULL ELSE pg_indexes_size(l.oid) END AS index_bytes
    FROM leaves l
), parts AS (
  SELECT parent, count(*) AS partition_count, bool_or(locked) AS any_locked,
         sum(total_bytes)::bigint AS total_bytes, sum(table_bytes)::bigint AS table_bytes,
         sum(index_bytes)::bigint AS index_bytes,
         sum(greatest(reltuples, 0))::bigint AS est_rows,
         sum(relpages)::bigint AS relpages,
         json_agg(json_build_object('schema', n.nspname, 'name', relname,
                                    'qualified_name', quote_ident(n.nspname) || '.' || quote_ident(relname),
                                    'total_bytes', total_bytes, 'table_bytes', table_bytes,
                                    'index_bytes', index_bytes, 'locked', locked,
                                    'est_rows', greatest(reltuples, 0)::bigint)
                  ORDER BY total_bytes DESC NULLS LAST, relname) AS partitions
    FROM leaf_sized ls JOIN pg_namespace n ON n.oid = ls.relnamespace
   GROUP BY parent
), ranked AS MATERIALIZED (
  -- materialized: "locked" is computed once per row, not once per reference below
  SELECT c.oid, c.relnamespace, c.relname, c.reltuples, c.reltoastrelid, c.relkind,
         coalesce(pt.relpages, c.relpages) AS relpages,
         (c.oid IN (SELECT relation FROM excl) OR c.reltoastrelid IN (SELECT relation FROM excl)
          OR coalesce(pt.any_locked, false)) AS locked,
         (SELECT coalesce(e.holder, e.any_pid) FROM excl e WHERE e.relation IN (c.oid, c.reltoastrelid) LIMIT 1)
           AS locked_by
    FROM picked p
    JOIN pg_class c ON c.oid = p.oid
    LEFT JOIN parts pt ON pt.parent = c.oid
), sized AS MATERIALIZED (
  -- each part measured once: the total is their sum (what pg_total_relation_size adds up, without
  -- measuring the indexes and the TOAST table a second time)
  SELECT r.oid, r.relnamespace, r.relname, r.reltuples, r.relpages, r.locked, r.locked_by, r.relkind,
         CASE WHEN r.locked THEN NULL WHEN r.relkind = 'p' THEN pt.table_bytes ELSE pg_relation_size(r.oid) END
           AS table_bytes,
         CASE WHEN r.locked THEN NULL WHEN r.relkind = 'p' THEN 0
              ELSE pg_relation_size(r.oid, 'fsm') + pg_relation_size(r.oid, 'vm') + pg_relation_size(r.oid, 'init')
         END AS other_forks_bytes,
         CASE WHEN r.locked THEN NULL WHEN r.relkind = 'p' THEN pt.index_bytes ELSE pg_indexes_size(r.oid) END
           AS index_bytes,
         CASE WHEN r.locked THEN NULL WHEN r.relkind = 'p' THEN pt.total_bytes - pt.table_bytes - pt.index_bytes
              WHEN r.reltoastrelid = 0 THEN 0 ELSE pg_total_relation_size(r.reltoastrelid) END AS toast_bytes,
         pt.partition_count, pt.partitions, pt.est_rows AS partition_rows
    FROM ranked r
    LEFT JOIN parts pt ON pt.parent = r.oid
)
SELECT n.nspname AS schema, s.relname AS name,
       quote_ident(n.nspname) || '.' || quote_ident(s.relname) AS qualified_name,
       s.table_bytes + s.other_forks_bytes + s.index_bytes + s.toast_bytes AS total_bytes,
       coalesce(s.table_bytes + s.other_forks_bytes + s.index_bytes + s.toast_bytes,
                s.relpages::bigint * current_setting('block_size')::int) AS sort_bytes,
       s.table_bytes, s.index_bytes, s.toast_bytes, s.locked, s.locked_by,
       s.partition_count, s.partitions::text AS partitions,
       CASE WHEN s.relkind = 'p' THEN s.partition_rows
            WHEN s.reltuples >= 0 THEN s.reltuples::bigint ELSE pg_stat_get_live_tuples(s.oid) END AS est_rows,
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
 ORDER BY sort_bytes DESC, schema, name
 LIMIT 50
