-- 003_add_trial_usage_count.sql
-- Count extractions per trial so the API can enforce the free-tier limit (2).

ALTER TABLE trial_usages
    ADD COLUMN IF NOT EXISTS extraction_count integer NOT NULL DEFAULT 0;
