-- expect: no_such_table
SELECT * FROM carray(1, 2);
