-- pgpreflight: is pg_stat_statements installed, in which schema (quoted by the server), and is it loaded?
SELECT quote_ident(n.nspname)                                    AS schema,
       e.extversion                                              AS version,
       'pg_stat_statements' = ANY (string_to_array(replace(current_setting('shared_preload_libraries'), ' ', ''), ',')) AS preloaded
  FROM pg_extension e
  JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE e.extname = 'pg_stat_statements'
