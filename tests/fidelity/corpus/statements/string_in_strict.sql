-- expect: datatype
CREATE TABLE s (n INTEGER) STRICT;
INSERT INTO s VALUES ('x');
