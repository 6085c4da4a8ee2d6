-- A trigger whose body holds `;` inside strings, and a view.
CREATE TRIGGER IF NOT EXISTS trg_notes_insert
AFTER INSERT ON notes
BEGIN
    INSERT INTO note_log (note_id, message) VALUES (NEW.id, 'created; indexed; ok');
    UPDATE note_log SET message = message || ';' WHERE note_id = NEW.id;
END;

CREATE VIEW IF NOT EXISTS note_summary AS
SELECT n.id, n.body, count(l.id) AS events
FROM notes n LEFT JOIN note_log l ON l.note_id = n.id
GROUP BY n.id;
