UPDATE sqlite_sequence SET seq = 100 WHERE name = 't';
INSERT INTO t (v) VALUES ('b');
