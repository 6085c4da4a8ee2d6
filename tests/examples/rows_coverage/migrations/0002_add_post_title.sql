-- d1check: allow-destructive table rebuild copies every row
-- d1check: not-idempotent a table rebuild runs once
CREATE TABLE posts_new (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id),
    body TEXT,
    title TEXT
);
INSERT INTO posts_new (id, user_id, body) SELECT id, user_id, body FROM posts;
DROP TABLE posts;
ALTER TABLE posts_new RENAME TO posts;
ALTER TABLE quotas ADD COLUMN note TEXT;
