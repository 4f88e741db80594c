-- pgpreflight: Walks the data directory: run it on the slow (tables) interval only.
SELECT pg_database_size(current_database()) AS database_bytes
