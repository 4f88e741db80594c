-- 004_add_ui_events.sql
-- Product analytics for the images MVP conversion funnel:
-- landing_viewed -> upload_selected -> analysis_started -> analysis_completed
--   -> paywall_viewed -> purchase_completed

CREATE TABLE IF NOT EXISTS image_mvp_events (
    id          bigserial PRIMARY KEY,
    user_id     text,                -- NULL for anonymous visitors
    session_id  text,
    event_type  text NOT NULL,
    properties  jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);
