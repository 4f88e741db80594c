-- pgpreflight: the queryids of pgpreflight's own statements in this database's pg_stat_statements, left out of
-- the header's totals (pgss_totals.sql). This one reads the query texts: it runs on the first poll and then
-- only when the number of entries changed, at most once a minute. Own statements start with the marker
-- (tui.db.connect.OWN_MARKER) or the .sql files' header; pg_dump's data statements of the backup test are
-- "COPY <table> (<columns>) TO stdout" (statements.sql leaves out the same).
SELECT coalesce(array_agg(DISTINCT p.queryid) FILTER (WHERE p.queryid IS NOT NULL), '{}')::bigint[] AS ids
  FROM {pgss}.pg_stat_statements(true) p
 WHERE p.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND (p.query LIKE '-- pgpreflight%' OR p.query LIKE '/* pgpreflight%' OR p.query LIKE 'COPY % TO stdout')
