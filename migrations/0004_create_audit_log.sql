-- Migration: 0004_create_audit_log
-- Every status change of a control is written to the audit log by a trigger.

CREATE TABLE IF NOT EXISTS audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    table_name TEXT NOT NULL,
    record_id INTEGER NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('INSERT', 'UPDATE', 'DELETE')),
    detail TEXT,
    changed_at TEXT NOT NULL DEFAULT (datetime('now'))
);

CREATE INDEX IF NOT EXISTS idx_audit_log_record ON audit_log(table_name, record_id);

CREATE TRIGGER IF NOT EXISTS trg_security_controls_status
AFTER UPDATE OF status ON security_controls
WHEN OLD.status IS NOT NEW.status
BEGIN
    INSERT INTO audit_log (table_name, record_id, action, detail)
    VALUES ('security_controls', NEW.id, 'UPDATE', 'status: ' || OLD.status || ' -> ' || NEW.status || ';');
END;
