-- pgpreflight: top tables by size. Ranked cheaply first (main fork of heap and TOAST, no index walk),
-- then the full breakdown only for the top 50. Names quoted by the server.
WITH ranked AS (
  SELECT c.oid, c.relnamespace, c.relname, c.reltuples, c.reltoastrelid
    FROM pg_class c
   WHERE c.relkind IN ('r', 'm', 'p')
     AND c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
     AND c.relnamespace <> coalesce(to_regnamespace('pg_toast'), 0::oid)
   ORDER BY pg_relation_size(c.oid)
            + CASE WHEN c.reltoastrelid <> 0 THEN pg_relation_size(c.reltoastrelid) ELSE 0 END DESC
   LIMIT 50
)
SELECT n.nspname AS schema, r.relname AS name,
       quote_ident(n.nspname) || '.' || quote_ident(r.relname) AS qualified_name,
       pg_total_relation_size(r.oid)                           AS total_bytes,
       pg_relation_size(r.oid)                                 AS table_bytes,
       pg_indexes_size(r.oid)                                  AS index_bytes,
       CASE WHEN r.reltoastrelid <> 0 THEN pg_total_relation_size(r.reltoastrelid) ELSE 0 END AS toast_bytes,
       CASE WHEN r.reltuples >= 0 THEN r.reltuples::bigint ELSE st.n_live_tup END AS est_rows,
       st.seq_scan, st.idx_scan, st.n_dead_tup AS dead_rows, st.last_autovacuum
  FROM ranked r
  JOIN pg_namespace n ON n.oid = r.relnamespace
  LEFT JOIN pg_stat_all_tables st ON st.relid = r.oid
 ORDER BY total_bytes DESC, schema, name
