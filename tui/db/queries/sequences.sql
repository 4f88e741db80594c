-- pgpreflight: the fullest sequence of this database, in % of its range used. A NULL last_value is a
-- sequence never used, or one this role may not read; a cycling sequence never runs out.
SELECT format('%I.%I', schemaname, sequencename) AS name,
       CASE WHEN increment_by > 0
            THEN 100.0 * (last_value::numeric - min_value) / nullif(max_value::numeric - min_value, 0)
            ELSE 100.0 * (max_value::numeric - last_value) / nullif(max_value::numeric - min_value, 0)
       END::float8 AS pct
  FROM pg_sequences
 WHERE last_value IS NOT NULL AND NOT cycle
 ORDER BY pct DESC NULLS LAST
 LIMIT 1
