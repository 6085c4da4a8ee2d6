-- Migration number: 0003 	 2025-03-01T14:12:00.000Z
ALTER TABLE boards ADD COLUMN archived_at INTEGER;
CREATE INDEX boards_live ON boards (workspace_id) WHERE archived_at IS NULL;
