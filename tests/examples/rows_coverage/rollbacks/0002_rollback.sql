-- Rebuilds posts without its title column, and forgets to copy the rows.
CREATE TABLE posts_old (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    body TEXT
);
DROP TABLE posts;
ALTER TABLE posts_old RENAME TO posts;
ALTER TABLE quotas DROP COLUMN note;
