-- exported without BEGIN TRANSACTION; D1 wraps the file
CREATE TABLE a (id INTEGER PRIMARY KEY);
