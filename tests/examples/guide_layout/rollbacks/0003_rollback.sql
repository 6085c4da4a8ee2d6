-- Rollback for 0003_add_review_fields (the index goes first: SQLite refuses to drop an indexed column)
DROP INDEX IF EXISTS idx_security_controls_reviewed;
ALTER TABLE security_controls DROP COLUMN reviewer_email;
ALTER TABLE security_controls DROP COLUMN last_reviewed_at;
