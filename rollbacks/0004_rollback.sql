-- Rollback for 0004_create_audit_log
DROP TRIGGER IF EXISTS trg_security_controls_status;
DROP INDEX IF EXISTS idx_audit_log_record;
DROP TABLE IF EXISTS audit_log;
