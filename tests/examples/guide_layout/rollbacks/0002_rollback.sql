-- Rollback for 0002_create_security_controls
DROP INDEX IF EXISTS idx_security_controls_status;
DROP TABLE IF EXISTS security_controls;
