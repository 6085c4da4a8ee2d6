-- expect: no_such_table
SELECT * FROM generate_series(1, 3);
