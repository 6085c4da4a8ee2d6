-- d1check: not-idempotent wrangler applies each migration once
CREATE TABLE sizes (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
