-- 002_add_trial_usage_tracking.sql
-- Free-trial tracking: the images MVP gives anonymous visitors and free accounts
-- a limited number of extractions, keyed by browser session.

CREATE TABLE IF NOT EXISTS trial_usages (
    id          bigserial PRIMARY KEY,
    user_id     text,
    session_id  text NOT NULL,
    email       text,
    tier        text NOT NULL DEFAULT 'free',
    created_at  timestamptz NOT NULL DEFAULT now()
);
