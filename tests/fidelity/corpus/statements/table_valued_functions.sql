-- expect: applied
CREATE TABLE t (a);
SELECT * FROM pragma_table_info('t');
SELECT * FROM json_each('[1,2]');
