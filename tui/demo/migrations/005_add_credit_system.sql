-- 005_add_credit_system.sql
-- Prepaid extraction credits. The API deducts one credit per extraction with
--   UPDATE credit_balances SET balance = balance - 1
--    WHERE user_id = $1 AND balance > 0
-- inside the same transaction that records the usage.

CREATE TABLE IF NOT EXISTS credit_balances (
    user_id     text PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    balance     integer NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
