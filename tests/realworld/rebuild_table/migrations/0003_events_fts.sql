CREATE VIRTUAL TABLE events_search USING fts5(kind, payload, content='events', content_rowid='id');

CREATE TRIGGER events_search_insert AFTER INSERT ON events BEGIN
    INSERT INTO events_search (rowid, kind, payload) VALUES (new.id, new.kind, new.payload);
END;

CREATE TRIGGER events_search_delete AFTER DELETE ON events BEGIN
    INSERT INTO events_search (events_search, rowid, kind, payload)
    VALUES ('delete', old.id, old.kind, old.payload);
END;
