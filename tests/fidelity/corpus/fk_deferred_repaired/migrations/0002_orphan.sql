PRAGMA defer_foreign_keys = ON;
INSERT INTO posts (id, user_id, title) VALUES (3, 99, 'orphan');
INSERT INTO users (id, email) VALUES (99, 'late@example.com');
