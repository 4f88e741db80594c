-- pgpreflight: where the data lives (superuser or pg_read_all_settings).
SELECT current_setting('data_directory') AS data_directory
