-- expect: applied
PRAGMA table_list(_cf_KV);
PRAGMA table_info(cf_x);
