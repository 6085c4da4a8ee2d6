CREATE VIRTUAL TABLE IF NOT EXISTS note_search USING fts5(body, content='notes', content_rowid='id');
