-- expect: no_such_table
SELECT * FROM dbstat;
