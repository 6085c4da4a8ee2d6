-- Migration: 0003_add_review_fields
-- Reviews required by the annual compliance cycle.
-- d1check: not-idempotent SQLite has no ADD COLUMN IF NOT EXISTS; wrangler applies each migration once

ALTER TABLE security_controls ADD COLUMN last_reviewed_at TEXT;
ALTER TABLE security_controls ADD COLUMN reviewer_email TEXT;

CREATE INDEX IF NOT EXISTS idx_security_controls_reviewed ON security_controls(last_reviewed_at);
