-- Recreate events with a JSON check and a timestamp; old rows are disposable.
DROP TABLE IF EXISTS events;
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    payload TEXT CHECK (payload IS NULL OR json_valid(payload)),
    recorded_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX events_kind ON events (kind);
CREATE INDEX events_recorded ON events (recorded_at);
