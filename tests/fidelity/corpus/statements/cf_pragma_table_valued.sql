-- expect: auth
SELECT name FROM pragma_table_xinfo('_cf_KV');
