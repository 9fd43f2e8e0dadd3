-- Runs once, when the PostgreSQL container of docker-compose.yml starts on an empty data
-- volume (the image runs /docker-entrypoint-initdb.d/*.sql as POSTGRES_USER).
-- Temporal creates its own databases (temporal, temporal_visibility); this one holds the
-- image-sync ledger, which the worker migrates on start (IMAGE_SYNC_LEDGER_URL).
CREATE DATABASE image_sync;
