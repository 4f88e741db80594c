-- pgpreflight: top statements of pg_stat_statements (PostgreSQL 12: total_time / mean_time).
-- {pgss} is the extension's schema, quoted by the server (quote_ident). Top 50 by total and top 50 by mean,
-- share and grand total aggregated on the server; the tool's own statements left out: those of its sessions
-- (they start with its marker comment, tui.db.connect.OWN_MARKER, or the .sql files' header), those of the
-- backup test's restore (a scratch database pgpreflight_restore_…, gone once the test ends: its dbid matches no
-- database) and the data statements of pg_dump when the backup test could not switch tracking off for it
-- (pg_dump writes them exactly so: "COPY <table> (<columns>) TO stdout"; psql's \copy says STDOUT).
WITH s AS (
  SELECT p.queryid, p.dbid, p.userid, p.query, p.calls, p.rows,
         p.total_time AS total_ms, p.mean_time AS mean_ms,
         p.shared_blks_hit, p.shared_blks_read
    FROM {pgss}.pg_stat_statements p
   WHERE p.query NOT LIKE '-- pgpreflight%' AND p.query NOT LIKE '/* pgpreflight%'
     AND p.query NOT LIKE 'COPY % TO stdout'
     AND EXISTS (SELECT 1 FROM pg_database d WHERE d.oid = p.dbid AND d.datname NOT LIKE 'pgpreflight\_restore\_%')
), t AS (
  SELECT s.*, sum(s.total_ms) OVER () AS all_ms FROM s
), top AS (
  (SELECT * FROM t ORDER BY total_ms DESC LIMIT 50)
  UNION
  (SELECT * FROM t ORDER BY mean_ms DESC LIMIT 50)
)
SELECT top.queryid::text AS queryid, d.datname AS database, r.rolname AS "user",
       left(top.query, 8000) AS query, top.calls, top.rows, top.total_ms::float8 AS total_ms,
       top.mean_ms::float8 AS mean_ms, top.all_ms::float8 AS all_ms,
       CASE WHEN top.shared_blks_hit + top.shared_blks_read > 0
            THEN top.shared_blks_hit::float8 / (top.shared_blks_hit + top.shared_blks_read) END AS cache_hit_ratio
  FROM top
  LEFT JOIN pg_database d ON d.oid = top.dbid
  LEFT JOIN pg_roles r ON r.oid = top.userid
 ORDER BY top.total_ms DESC
