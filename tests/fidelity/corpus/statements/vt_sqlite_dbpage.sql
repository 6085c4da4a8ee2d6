-- expect: no_such_table
SELECT * FROM sqlite_dbpage;
