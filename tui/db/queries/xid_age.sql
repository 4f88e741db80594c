-- pgpreflight: transaction ID wraparound: the database whose oldest unfrozen XID is oldest
SELECT datname AS database, age(datfrozenxid)::bigint AS xid_age
  FROM pg_database
 ORDER BY age(datfrozenxid) DESC
 LIMIT 1
