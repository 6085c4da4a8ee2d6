begin transaction;
CREATE TABLE a (id INTEGER PRIMARY KEY);
commit;
