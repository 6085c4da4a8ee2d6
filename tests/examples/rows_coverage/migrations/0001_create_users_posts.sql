CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, email TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS posts (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    body TEXT
);
-- No row can satisfy this CHECK: the table stays empty unless a seed file fills it.
CREATE TABLE IF NOT EXISTS quotas (
    id INTEGER PRIMARY KEY,
    used INTEGER NOT NULL CHECK (used > 5 AND used < 3)
);
