-- Migration number: 0002 	 2025-02-10T09:30:00.000Z
CREATE TABLE boards (
    id TEXT PRIMARY KEY NOT NULL,
    workspace_id TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    title TEXT NOT NULL,
    FOREIGN KEY (workspace_id) REFERENCES workspaces(id) ON DELETE CASCADE,
    FOREIGN KEY (owner_id) REFERENCES members(id)
);
CREATE INDEX boards_workspace ON boards (workspace_id);
