-- Migration: 0002_create_security_controls
-- The controls each organization must operate, with their current status.

CREATE TABLE IF NOT EXISTS security_controls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    organization_id INTEGER NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    code TEXT NOT NULL,
    title TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'planned'
        CHECK (status IN ('planned', 'implemented', 'tested', 'retired')),
    UNIQUE (organization_id, code)
);

CREATE INDEX IF NOT EXISTS idx_security_controls_status ON security_controls(status);
