INSERT INTO log (name) VALUES ('0002_e');
