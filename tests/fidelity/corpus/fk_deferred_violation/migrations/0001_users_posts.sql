CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE);
CREATE TABLE posts (
  id INTEGER PRIMARY KEY,
  user_id INTEGER  REFERENCES users (id) ON DELETE CASCADE,
  title TEXT
);
INSERT INTO users (id, email) VALUES (1, 'a@example.com'), (2, 'b@example.com');
INSERT INTO posts (id, user_id, title) VALUES (1, 1, 'first'), (2, 2, 'second');
