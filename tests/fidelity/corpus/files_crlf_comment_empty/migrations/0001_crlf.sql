CREATE TABLE a (
  id INTEGER PRIMARY KEY,
  name TEXT
);
INSERT INTO a (name) VALUES ('x');
