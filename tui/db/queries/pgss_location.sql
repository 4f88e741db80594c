-- pgpreflight: is pg_stat_statements created here, and in which schema (quoted by the server)?
-- Whether it is preloaded shows when the view is read (shared_preload_libraries needs pg_read_all_settings).
SELECT quote_ident(n.nspname) AS schema, e.extversion AS version
  FROM pg_extension e
  JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE e.extname = 'pg_stat_statements'
