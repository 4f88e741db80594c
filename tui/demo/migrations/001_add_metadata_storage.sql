-- 001_add_metadata_storage.sql
-- Accounts, paid plans and per-request extraction analytics for the images MVP.
-- The metadata extracted from each upload is kept as JSONB next to the request.

CREATE TABLE IF NOT EXISTS users (
    id          text PRIMARY KEY,
    email       text NOT NULL UNIQUE,
    tier        text NOT NULL DEFAULT 'free',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS subscriptions (
    id                  text PRIMARY KEY,
    user_id             text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    tier                text NOT NULL,
    status              text NOT NULL DEFAULT 'active',
    current_period_end  timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS idx_subscriptions_user_id ON subscriptions(user_id);

-- One row per extraction request (anonymous trial uploads have no user_id).
CREATE TABLE IF NOT EXISTS extraction_analytics (
    id             bigserial PRIMARY KEY,
    user_id        text,
    tier           text NOT NULL,
    file_type      text,
    success        boolean NOT NULL,
    processing_ms  integer,
    requested_at   timestamptz NOT NULL DEFAULT now(),
    metadata       jsonb
);
