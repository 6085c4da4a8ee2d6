-- expect: auth
PRAGMA main.index_list("_CF_kv");
